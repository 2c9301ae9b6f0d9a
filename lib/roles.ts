/** The roles an API key can hold (see stores/api-keys.ts and api/auth.ts); `viewer` reads the registry. */
export type Role = 'predict' | 'feedback' | 'admin' | 'approver' | 'viewer';
export const ROLES: readonly Role[] = ['predict', 'feedback', 'admin', 'approver', 'viewer'];
