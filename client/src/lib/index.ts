// The OpenStudio client library: signaling with resume, the audio mesh, the program mix,
// the program feed, who hears whom (reach) and the HTTP API. See docs/client.md.
export { StudioClient, SUBPROTOCOL } from './studio-client';
export type { StudioClientOptions, Welcome, ErrorMessage, CloseEvent } from './studio-client';
export { AudioMesh } from './mesh';
export type { MeshOptions } from './mesh';
export { ProgramMix, Channel, LevelMeter, DEFAULT_LOUDNESS_TARGET, LOUDNESS_TARGETS, METER_FLOOR_DB } from './program-mix';
export type { ChannelOptions, ProgramLoudness } from './program-mix';
export { Broadcaster } from './broadcaster';
export type { BroadcasterOptions, BroadcasterState, BroadcasterStatus } from './broadcaster';
export { reach, voiceReach, ownVoiceInProgram, ownTalkback, privateTalkPartner } from './reach';
export type { ReachInput, VoiceReach } from './reach';
export {
  HttpError,
  createRoom,
  deleteSound,
  deleteTake,
  fetchSound,
  listRecordings,
  mintInvite,
  recordingState,
  revokeInvites,
  uploadSound,
} from './http';
export type { CreatedRoom, Invite, ReplacementInvite, HttpOptions } from './http';
export type { Participant, BroadcastInfo, ChatMessage, Role } from '../../../protocol/messages';
export { UploadQueue } from './upload-queue';
export type { QueuedChunk, UploadProgress } from './upload-queue';
export { TrackRecorder, loadCapture } from './track-recorder';
export type { TrackRecorderOptions } from './track-recorder';
export { RoomClock } from './room-clock';
export { SoundPlayer } from './sound-player';
export type { SoundPlayerOptions } from './sound-player';
export type { SoundInfo } from '../../../protocol/sounds';
export type { RecordingInfo, TrackGrant, TakeListing, TrackSummary } from '../../../protocol/recording';
