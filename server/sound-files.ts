/**
 * Where the soundboard's files live in R2: beside the recordings, one object per sound,
 * under the room. The Worker writes and serves them; the room deletes them with itself.
 */
export const soundPrefix = (roomId: string) => `sounds/${roomId}/`;
export const soundKey = (roomId: string, soundId: string) => `${soundPrefix(roomId)}${soundId}`;

/** Delete every sound of a room: one list and one batch delete per 1000 objects. */
export async function deleteSoundFiles(bucket: R2Bucket, roomId: string): Promise<number> {
  let deleted = 0;
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: soundPrefix(roomId), ...(cursor ? { cursor } : {}) });
    const keys = page.objects.map((object) => object.key);
    if (keys.length > 0) await bucket.delete(keys);
    deleted += keys.length;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return deleted;
}
