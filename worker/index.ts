/**
 * The Worker: routes, then edge guards, then the room's Durable Object. Route handlers
 * live in rooms.ts (HTTP API), upgrade.ts (signaling WebSocket), broadcast.ts (program
 * feed), recordings.ts (uploads and downloads of takes) and sounds.ts (the soundboard's
 * files); guards in guards.ts.
 */
import { Router, type IRequest } from 'itty-router';
import { PROTOCOL_VERSION } from '../protocol/messages';
import { ConfigError, readConfig } from '../server/config';
import { corsFor, withSecurityHeaders } from './guards';
import { errorResponse, HttpError, json } from './http';
import { createRoom, iceServers, mintInvite, revokeInvites } from './rooms';
import { broadcastFeed } from './broadcast';
import { deleteRecording, downloadManifest, downloadTrack, listRecordings, putChunk, recordingState } from './recordings';
import { addSound, deleteSound, getSound, listSounds } from './sounds';
import { upgrade } from './upgrade';

export { Feed } from '../durable-objects/feed';
export { Recordings } from '../durable-objects/recordings';
export { Room } from '../durable-objects/room';

type Args = [Env, ExecutionContext];

/** CORS headers per ALLOWED_ORIGINS; none when the settings are broken (the response says misconfigured). */
function corsify(response: Response, request: IRequest, env: Env): Response {
  try {
    return corsFor(readConfig(env)).corsify(response, request);
  } catch (error) {
    if (error instanceof ConfigError) return response;
    throw error;
  }
}

export const router = Router<IRequest, Args>({
  before: [(request, env) => corsFor(readConfig(env)).preflight(request)],
  catch: (error: unknown) => {
    if (error instanceof HttpError) return errorResponse(error.status, error.code, error.message, error.headers);
    if (error instanceof ConfigError) {
      // The detail (which may hold an internal address) is for the operator's log only.
      console.error(`configuration error: ${error.message}`);
      return errorResponse(500, 'misconfigured', error.publicMessage);
    }
    console.error('unhandled error', error);
    return errorResponse(500, 'internal', 'internal error');
  },
  // Every response gets the security headers, also when the settings cannot be read.
  finally: [(response: Response, request, env) => withSecurityHeaders(corsify(response, request, env))],
});

router
  .get('/health', () => json({ status: 'ok', protocol: PROTOCOL_VERSION }))
  .post('/rooms', createRoom)
  .post('/rooms/:roomId/tokens', mintInvite)
  .post('/rooms/:roomId/revoke', revokeInvites)
  .get('/rooms/:roomId/ice', iceServers)
  .get('/rooms/:roomId/ws', upgrade)
  .get('/rooms/:roomId/broadcast', broadcastFeed)
  .get('/rooms/:roomId/recording', recordingState)
  .get('/rooms/:roomId/recordings', listRecordings)
  .put('/rooms/:roomId/recordings/:takeId/tracks/:trackId/chunks/:segment/:seq', putChunk)
  .get('/rooms/:roomId/recordings/:takeId/manifest.json', downloadManifest)
  .get('/rooms/:roomId/recordings/:takeId/tracks/:file', downloadTrack)
  .delete('/rooms/:roomId/recordings/:takeId', deleteRecording)
  .post('/rooms/:roomId/sounds', addSound)
  .get('/rooms/:roomId/sounds', listSounds)
  .get('/rooms/:roomId/sounds/:soundId', getSound)
  .delete('/rooms/:roomId/sounds/:soundId', deleteSound)
  .all('*', () => errorResponse(404, 'not-found', 'no such endpoint'));

export default {
  fetch: (request: Request, env: Env, ctx: ExecutionContext) => router.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
