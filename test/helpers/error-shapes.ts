/**
 * The error body each gateway path answers in: the Open Inference Protocol's `{"error": "<string>"}`
 * under `/v2`, MLflow's `{"error_code", "message"}` on `/invocations`, Keel's
 * `{"error": {"code", "message", "field"?}}` everywhere else.
 */
import assert from 'node:assert/strict';

export type ErrorShape = 'oip' | 'mlflow' | 'keel';

export function errorShapeOf(path: string): ErrorShape {
  if (path === '/v2' || path.startsWith('/v2/')) return 'oip';
  if (path === '/invocations' || path.startsWith('/invocations?')) return 'mlflow';
  return 'keel';
}

/** Asserts that `text` is the error body of `path`'s protocol; answers its message. */
export function assertErrorBody(path: string, text: string, where = path): string {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const body = JSON.parse(text) as Record<string, any>;
  switch (errorShapeOf(path)) {
    case 'oip':
      assert.deepEqual(Object.keys(body), ['error'], `not an OIP error body: ${where}`);
      assert.equal(typeof body.error, 'string', `not an OIP error body: ${where}`);
      return body.error as string;
    case 'mlflow':
      assert.deepEqual(Object.keys(body).sort(), ['error_code', 'message'], `not an MLflow error body: ${where}`);
      assert.match(body.error_code, /^[A-Z_]+$/, `not an MLflow error code: ${where}`);
      assert.equal(typeof body.message, 'string', `not an MLflow error body: ${where}`);
      return body.message as string;
    case 'keel':
      assert.equal(typeof body.error?.code, 'string', `no error code: ${where}`);
      assert.equal(typeof body.error?.message, 'string', `no error message: ${where}`);
      return body.error.message as string;
  }
}
