/** The roles an API key can hold (see stores/api-keys.ts and api/auth.ts). */
export type Role = 'predict' | 'feedback' | 'admin' | 'approver';
export const ROLES: readonly Role[] = ['predict', 'feedback', 'admin', 'approver'];
