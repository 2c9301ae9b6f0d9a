import { createHash } from 'node:crypto';

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function isSha256(value: string): boolean {
  return SHA256_HEX.test(value);
}
