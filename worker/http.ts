/** JSON responses and the HTTP error shape `{"error": {"code", "message"}}`. */
import type { ErrorCode } from '../protocol/messages';

export function json(body: unknown, status = 200, headers?: HeadersInit): Response {
  return Response.json(body, { status, headers });
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers?: HeadersInit,
  ) {
    super(message);
  }
}

/** The HTTP status of each refusal a Durable Object answers with (a code and a message). */
const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  unauthorized: 401,
  'token-revoked': 401,
  forbidden: 403,
  'room-not-found': 404,
  'invalid-request': 400,
  'too-large': 413,
  'recording-closed': 409,
  'recording-active': 409,
  'quota-exceeded': 507,
  'invalid-sound': 415,
  'sound-not-found': 404,
};

/** A Durable Object's refusal as the HTTP error the edge answers with. */
export function refused({ code, message }: { code: ErrorCode; message: string }): HttpError {
  return new HttpError(STATUS_OF[code] ?? 400, code, message);
}

export function errorResponse(status: number, code: string, message: string, headers?: HeadersInit): Response {
  return json({ error: { code, message } }, status, headers);
}

/** Read a body no larger than `maxBytes`, streamed, so a huge body is cut off early (413 `too-large`). */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = () => new HttpError(413, 'too-large', `request body exceeds ${maxBytes} bytes`);
  if (Number(request.headers.get('content-length') ?? '0') > maxBytes) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** Read a JSON body no larger than `maxBytes`; an empty body reads as `{}`. */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const text = new TextDecoder().decode(await readBody(request, maxBytes));
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'bad-json', 'request body is not valid JSON');
  }
}
