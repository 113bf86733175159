// Wire types of the REST API and the WebSocket protocol (docs/api.md, docs/protocol.md).

export type Role = 'admin' | 'supervisor' | 'recruiter';

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  department_id: string | null;
  phone: string | null;
  title: string | null;
  signature: string | null;
  active: boolean;
  created_at: string;
  updated_at: string;
}

export interface Tenant {
  id: string;
  slug: string;
  name: string;
}

export interface Me {
  user: User;
  tenant: Tenant;
  session_id: string;
}

export interface Department {
  id: string;
  name: string;
  created_at: string;
}

export interface Session {
  id: string;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  user_agent: string | null;
  source: string | null;
  current: boolean;
}

/** An entry of the audit log (`GET /audit`, admins), newest first. */
export interface AuditEntry {
  id: string;
  at: string;
  actor_user_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  source: string | null;
  details: Record<string, unknown> | null;
}

export type PresenceStatus = 'online' | 'away' | 'busy' | 'offline';

/** A presence entry; over the socket absent fields mean "none". */
export interface Presence {
  user_id: string;
  status: PresenceStatus;
  text?: string | null;
  until?: number | null;
  out_of_office?: boolean;
  last_active_at?: number | null;
}

export interface DirectoryEntry {
  user: User;
  department_name: string | null;
  presence: Presence | null;
}

export interface Room {
  id: string;
  kind: 'group' | 'direct';
  name: string | null;
  member_ids: string[];
  created_by: string;
  created_at: string;
  last_message_at: string | null;
  unread?: number;
}

export interface Attachment {
  upload_id: string;
  file_name: string;
  content_type: string;
  size: number;
}

export interface Message {
  id: string;
  room_id: string;
  author_id: string;
  body: string;
  client_message_id: string | null;
  mentions: string[];
  attachments: Attachment[];
  position: number;
  created_at: string;
  edited_at: string | null;
  deleted: boolean;
}

export interface SendResult {
  message: Message;
  duplicate: boolean;
}

export interface Upload {
  id: string;
  file_name: string;
  content_type: string;
  size: number;
}

export interface Identity {
  id: string;
  kind: 'phone' | 'email' | 'hh' | 'telegram' | string;
  value: string;
  created_at: string;
}

export interface Contact {
  id: string;
  name: string | null;
  city: string | null;
  identities: Identity[];
  created_at: string;
  updated_at: string;
}

/** `GET /contacts/{id}/suggestions`: another applicant who may be the same person. */
export interface MergeSuggestion {
  contact: Contact;
  reasons: ('same_name' | 'same_phone' | 'same_email_local_part' | string)[];
}

export interface ContactMerge {
  id: string;
  survivor_id: string;
  merged_id: string;
  moved_identities: string[];
  reason: string;
  at: string;
  actor_user_id?: string | null;
  undone_at?: string | null;
}

// --- Applicant threads, channels, routing (docs/api.md "Applicant threads") --------------

export type ChannelKind = 'sms' | 'email' | 'board' | 'chat';
export type ThreadState = 'open' | 'pending' | 'closed';
export type DeliveryState = 'queued' | 'sent' | 'delivered' | 'read' | 'failed';

export interface Thread {
  id: string;
  contact_id: string;
  contact_name: string | null;
  state: ThreadState;
  assignee_id: string | null;
  queue_id: string | null;
  vacancy: string | null;
  subject: string | null;
  preview: string | null;
  unread: number;
  last_channel_account_id: string | null;
  last_channel_kind: ChannelKind | string | null;
  last_message_at: string;
  last_inbound_at: string | null;
  awaiting_reply_since: string | null;
  waiting_since: string | null;
  assigned_at: string | null;
  first_inbound_at: string | null;
  first_response_at: string | null;
  resolved_at: string | null;
  reroute_reason: string | null;
  rerouted_from: string | null;
  rerouted_at: string | null;
  merged_into: string | null;
  created_at: string;
  updated_at: string;
}

export interface ThreadMessage {
  id: string;
  thread_id: string;
  direction: 'in' | 'out' | 'note' | 'system';
  channel_account_id: string | null;
  channel_kind: ChannelKind | string | null;
  author_user_id: string | null;
  remote_address: string | null;
  subject: string | null;
  text: string;
  html: string | null;
  attachments: Attachment[];
  mentions: string[];
  external_id: string | null;
  client_message_id: string | null;
  delivery_state: DeliveryState | null;
  failure_reason: string | null;
  auto_submitted: boolean;
  created_at: string;
  updated_at: string;
}

export interface ThreadMention {
  thread_id: string;
  message_id: string;
  by: string;
  text: string;
}

export type Health = 'ok' | 'degraded' | 'needs_relogin' | 'down';

export interface ChannelAccount {
  id: string;
  kind: ChannelKind | string;
  provider: string;
  name: string;
  address: string;
  owner_user_id: string | null;
  settings: Record<string, unknown>;
  queue_id: string | null;
  enabled: boolean;
  health: Health | string;
  health_class: string | null;
  last_error: string | null;
  health_since: string | null;
  next_retry_at: string | null;
  last_inbound_at: string | null;
  last_outbound_at: string | null;
  inbound_expected_within_s: number | null;
  created_at: string;
  updated_at: string;
}

export interface AccountWithSecret {
  account: ChannelAccount;
  secret: string;
}

export type Strategy = 'manual' | 'round_robin' | 'least_busy';

export interface QueueMember {
  user_id: string;
  capacity: number;
}

export interface Queue {
  id: string;
  name: string;
  department_id: string | null;
  vacancy: string | null;
  strategy: Strategy | string;
  away_limit_s: number | null;
  response_limit_s: number | null;
  members: QueueMember[];
  created_at: string;
}

export interface Template {
  id: string;
  kind: 'template' | 'signature' | string;
  name: string;
  body: string;
  owner_user_id: string | null;
  created_at: string;
  updated_at: string;
}

// --- Job boards and the ATS (docs/api.md "Job boards and the ATS") ---------------------

/** Who connected a board account; an employer's manager sees only their own vacancies. */
export interface BoardAccountInfo {
  user_id: string;
  name: string;
  email?: string | null;
  employer_id: string;
  employer_name: string;
  manager_id?: string | null;
  role: 'admin' | 'manager' | string;
}

export interface BoardDifference {
  negotiation_id: string;
  board_vacancy_id: string;
  reason: string;
}

/** `GET /channel-accounts/{id}/board`: the connection and the import. */
export interface BoardStatus {
  connected: boolean;
  board_account: BoardAccountInfo | null;
  initial_done: boolean;
  position_vacancy_id: string | null;
  position_collection: number;
  position_page: number;
  responses_loaded: number;
  applications_created: number;
  differences: BoardDifference[];
  health: Health | string;
  last_error: string | null;
}

/** The `board.import` event: the counters (`differences` is how many). */
export interface BoardImportEvent {
  account_id: string;
  initial_done: boolean;
  responses_loaded: number;
  applications_created: number;
  differences: number;
}

export interface NewResponses {
  total: number;
  source: 'board' | 'last_sync' | string;
  vacancies: { board_vacancy_id: string; name: string; on_board: number; imported: number; not_imported: number }[];
}

export interface OAuthStart {
  authorize_url: string;
  expires_at: string;
}

export interface BoardStateRef {
  id: string;
  name: string;
}

/** A board account's status mapping (board state → stage). */
export interface BoardMapping {
  mode: 'simple' | 'extended' | string;
  pipeline_id: string | null;
  responses_stage_id: string | null;
  invitations_stage_id: string | null;
  state_stages: Record<string, string>;
  /** Present only on hubs that have it: who gets the account's new responses. */
  responsible_user_id?: string | null;
}

export interface MappingView extends BoardMapping {
  board_states: BoardStateRef[];
}

export interface Stage {
  id: string;
  pipeline_id: string;
  name: string;
  position: number;
}

export interface Pipeline {
  id: string;
  name: string;
  is_default: boolean;
  stages: Stage[];
  created_at: string;
}

export interface Vacancy {
  id: string;
  name: string;
  city: string | null;
  board_provider: string | null;
  board_account_id: string | null;
  board_vacancy_id: string | null;
  board_url: string | null;
  linked_vacancy_id: string | null;
  board_states: BoardStateRef[];
  board_total: number | null;
  created_at: string;
  updated_at: string;
}

export interface Application {
  id: string;
  contact_id: string;
  vacancy_id: string;
  vacancy_name: string | null;
  thread_id: string | null;
  stage_id: string | null;
  stage_name: string | null;
  stage_changed_at: string | null;
  source: 'local' | 'hh' | string;
  board_account_id: string | null;
  board_negotiation_id: string | null;
  board_state_id: string | null;
  board_state_name: string | null;
  board_chat_id: string | null;
  board_resume_id: string | null;
  board_created_at: string | null;
  board_updated_at: string | null;
  resume_upload_id: string | null;
  card: Record<string, unknown> | null;
  created_at: string;
  updated_at: string;
}

/** `GET /applications/{id}`: the candidate card. */
export interface ApplicationCard {
  application: Application;
  name: string | null;
  phone: string | null;
  email: string | null;
  city: string | null;
  hidden: string[];
  resume_url: string | null;
  chat_replies_in_a_row: number | null;
  chat_limit: number | null;
  other_applications: Application[];
}

// --- WebSocket frames -------------------------------------------------------------------

export type EventKind =
  | 'room.created'
  | 'room.updated'
  | 'room.members_changed'
  | 'room.removed'
  | 'room.message'
  | 'room.message_edited'
  | 'room.message_deleted'
  | 'room.read'
  | 'mention'
  | 'thread.message'
  | 'thread.updated'
  | 'thread.message_updated'
  | 'thread.mention'
  | 'channel.health'
  | 'contact.updated'
  | 'contact.merged'
  | 'contact.merge_undone'
  | 'application.updated'
  | 'vacancy.updated'
  | 'board.import';

export interface ReadMark {
  room_id: string;
  user_id: string;
  message_id: string;
  at: string;
}

export interface MentionData {
  room_id: string;
  message_id: string;
  author_id: string;
  excerpt: string;
}

export type RealtimeEvent =
  | { type: 'event'; position: number; kind: 'room.created' | 'room.updated' | 'room.members_changed'; data: Room }
  | { type: 'event'; position: number; kind: 'room.removed'; data: { room_id: string; user_id: string } }
  | { type: 'event'; position: number; kind: 'room.message' | 'room.message_edited' | 'room.message_deleted'; data: Message }
  | { type: 'event'; position: number; kind: 'room.read'; data: ReadMark }
  | { type: 'event'; position: number; kind: 'mention'; data: MentionData }
  | { type: 'event'; position: number; kind: 'thread.message' | 'thread.message_updated'; data: ThreadMessage }
  | { type: 'event'; position: number; kind: 'thread.updated'; data: Thread }
  | { type: 'event'; position: number; kind: 'thread.mention'; data: ThreadMention }
  | { type: 'event'; position: number; kind: 'channel.health'; data: ChannelAccount }
  | { type: 'event'; position: number; kind: 'application.updated'; data: Application }
  | { type: 'event'; position: number; kind: 'vacancy.updated'; data: Vacancy }
  | { type: 'event'; position: number; kind: 'board.import'; data: BoardImportEvent }
  | { type: 'event'; position: number; kind: string; data: unknown };

export type ServerFrame =
  | { type: 'welcome'; v: number; ref: string | null; user_id: string; session_id: string; node: string; position: number }
  | { type: 'presence_snapshot'; users: Presence[]; last: boolean }
  | { type: 'resync'; position: number }
  | { type: 'live'; position: number }
  | RealtimeEvent
  | { type: 'ack'; ref: string | null; client_message_id?: string; message_id?: string; position?: number; duplicate?: boolean }
  | { type: 'pong'; ref: string | null }
  | { type: 'error'; ref?: string; code: string; message: string }
  | { type: 'presence'; users: Presence[] }
  /** Someone typing in a staff room (`room_id`) or in an applicant thread's composer (`thread_id`). */
  | { type: 'typing'; room_id?: string; thread_id?: string; user_id: string };
