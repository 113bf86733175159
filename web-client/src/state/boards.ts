// Pure helpers of the job-board screens: the status-mapping form, the board sync state of an
// application (the hub's mapping rules mirrored), import progress fed by `board.import`,
// the applicant's applications kept current by `application.updated`, the hidden-field
// placeholders of the candidate card, the board chat's limit and the OAuth callback's answer.
import type {
  Application,
  BoardAccountInfo,
  BoardImportEvent,
  BoardMapping,
  BoardStateRef,
  BoardStatus,
  MappingView,
  Pipeline,
} from '../api/types';

// --- the status mapping ------------------------------------------------------------------

export type MappingMode = 'simple' | 'extended';

/** The mapping being edited: '' is "no stage". */
export interface MappingForm {
  mode: MappingMode;
  pipeline_id: string;
  responses_stage_id: string;
  invitations_stage_id: string;
  /** Board state id → stage id ('' or absent: none). */
  state_stages: Record<string, string>;
  /** The hub reports a responsible recruiter (the key is in its answer): edit and send it. */
  hasResponsible: boolean;
  responsible_user_id: string;
}

/** A refusal state ("discard_by_employer", "discard_by_applicant", …). */
export const isRefusal = (stateId: string) => stateId.startsWith('discard');

export function mappingForm(view: BoardMapping | MappingView): MappingForm {
  const hasResponsible = Object.prototype.hasOwnProperty.call(view, 'responsible_user_id');
  return {
    mode: view.mode === 'simple' ? 'simple' : 'extended',
    pipeline_id: view.pipeline_id ?? '',
    responses_stage_id: view.responses_stage_id ?? '',
    invitations_stage_id: view.invitations_stage_id ?? '',
    state_stages: { ...(view.state_stages ?? {}) },
    hasResponsible,
    responsible_user_id: (hasResponsible && view.responsible_user_id) || '',
  };
}

/**
 * Another pipeline: every chosen stage that is not in it is matched by name (the default
 * pipeline and a copy share names), else left empty; responses default to its first stage.
 */
export function choosePipeline(form: MappingForm, pipelines: Pipeline[], pipelineId: string): MappingForm {
  const from = pipelines.find((p) => p.id === form.pipeline_id);
  const to = pipelines.find((p) => p.id === pipelineId);
  if (!to) return { ...form, pipeline_id: pipelineId };
  const carry = (stageId: string): string => {
    if (!stageId) return '';
    if (to.stages.some((s) => s.id === stageId)) return stageId;
    const name = from?.stages.find((s) => s.id === stageId)?.name;
    return to.stages.find((s) => s.name === name)?.id ?? '';
  };
  const state_stages: Record<string, string> = {};
  for (const [state, stage] of Object.entries(form.state_stages)) {
    const c = carry(stage);
    if (c) state_stages[state] = c;
  }
  const ordered = [...to.stages].sort((a, b) => a.position - b.position);
  return {
    ...form,
    pipeline_id: to.id,
    responses_stage_id: carry(form.responses_stage_id) || ordered[0]?.id || '',
    invitations_stage_id: carry(form.invitations_stage_id),
    state_stages,
  };
}

/** What is missing before the form can be saved (message keys). */
export function mappingProblems(form: MappingForm, pipelines: Pipeline[]): string[] {
  const problems: string[] = [];
  const pipeline = pipelines.find((p) => p.id === form.pipeline_id);
  if (!pipeline) problems.push('mapping.problem.pipeline');
  if (form.mode === 'simple') {
    if (!form.responses_stage_id) problems.push('mapping.problem.responses');
    if (!form.invitations_stage_id) problems.push('mapping.problem.invitations');
  }
  if (pipeline) {
    const own = new Set(pipeline.stages.map((s) => s.id));
    const chosen = [form.responses_stage_id, form.invitations_stage_id, ...Object.values(form.state_stages)].filter(Boolean);
    if (chosen.some((s) => !own.has(s))) problems.push('mapping.problem.foreignStage');
  }
  return problems;
}

/**
 * The PUT body. Simple mode keeps only the refusals in `state_stages` (the hub also moves
 * applications on the board by `state_stages` in simple mode, so leftovers of the extended
 * table would keep acting); `responsible_user_id` is sent only to a hub that reported it.
 */
export function mappingBody(form: MappingForm): BoardMapping {
  const state_stages: Record<string, string> = {};
  for (const [state, stage] of Object.entries(form.state_stages)) {
    if (stage && (form.mode === 'extended' || isRefusal(state))) state_stages[state] = stage;
  }
  const body: BoardMapping = {
    mode: form.mode,
    pipeline_id: form.pipeline_id || null,
    responses_stage_id: form.responses_stage_id || null,
    invitations_stage_id: form.invitations_stage_id || null,
    state_stages,
  };
  if (form.hasResponsible) body.responsible_user_id = form.responsible_user_id || null;
  return body;
}

/** The stage a board state lands on (the hub's `BoardMapping::stage_for`). */
export function stageFor(m: BoardMapping, stateId: string): string | null {
  if (m.mode === 'extended' && m.state_stages[stateId]) return m.state_stages[stateId];
  if (stateId === 'response') return m.responses_stage_id;
  if (isRefusal(stateId)) return m.state_stages[stateId] ?? null;
  return m.invitations_stage_id;
}

/** The board state a stage moves an application to (the hub's `BoardMapping::state_for`). */
export function stateFor(m: BoardMapping, stageId: string, order: string[]): string | null {
  const states = Object.entries(m.state_stages)
    .filter(([, s]) => s === stageId)
    .map(([state]) => state);
  const rank = (s: string) => {
    const i = order.indexOf(s);
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  states.sort((a, b) => rank(a) - rank(b));
  return states[0] ?? null;
}

export type BoardSync =
  | { kind: 'local' }
  | { kind: 'synced' }
  /** The stage has no board state: the board keeps its own. */
  | { kind: 'not_on_board' }
  /** The board shows a state that does not lead to this stage. */
  | { kind: 'differs'; expected: string };

/** Whether an application's stage and its board state agree under the account's mapping. */
export function boardSync(app: Application, mapping: BoardMapping | null, order: string[]): BoardSync {
  if (!app.board_account_id || !app.board_state_id || !mapping) return { kind: 'local' };
  if (app.stage_id && stageFor(mapping, app.board_state_id) === app.stage_id) return { kind: 'synced' };
  const expected = app.stage_id ? stateFor(mapping, app.stage_id, order) : null;
  if (!expected) return { kind: 'not_on_board' };
  if (expected === app.board_state_id) return { kind: 'synced' };
  return { kind: 'differs', expected };
}

/** Board states for a table: the reported ones, in the board's order. */
export function boardStates(view: MappingView | null): BoardStateRef[] {
  return view?.board_states ?? [];
}

// --- import progress -----------------------------------------------------------------------

/** A `board.import` event applied to the status held; `reload` when the list is out of date. */
export function applyImportEvent(status: BoardStatus, ev: BoardImportEvent): { status: BoardStatus; reload: boolean } {
  const next: BoardStatus = {
    ...status,
    initial_done: ev.initial_done,
    responses_loaded: ev.responses_loaded,
    applications_created: ev.applications_created,
  };
  const reload = ev.differences !== status.differences.length || ev.initial_done !== status.initial_done;
  return { status: next, reload };
}

/** The two counters agree: every response loaded became an application or is a difference. */
export function countersAgree(s: Pick<BoardStatus, 'responses_loaded' | 'applications_created' | 'differences'>): boolean {
  return s.applications_created + s.differences.length === s.responses_loaded;
}

// --- applications --------------------------------------------------------------------------

/** Newest first, as the hub lists them. */
function newerFirst(a: Application, b: Application): number {
  return b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id);
}

/**
 * Puts `incoming` into a list of applications: an older copy (by `updated_at`) never replaces
 * a newer one; new ones are placed newest first. Returns the same list when nothing changed.
 */
export function mergeApplications(list: Application[], incoming: Application[]): Application[] {
  let out = list;
  for (const a of incoming) {
    const i = out.findIndex((x) => x.id === a.id);
    if (i >= 0) {
      if (out[i].updated_at > a.updated_at || out[i] === a) continue;
      out = [...out.slice(0, i), a, ...out.slice(i + 1)];
    } else {
      out = [...out, a].sort(newerFirst);
    }
  }
  return out;
}

/** The held application, or the incoming copy when it is newer. */
export function newerApplication(held: Application, incoming: Application): Application {
  return incoming.id === held.id && incoming.updated_at >= held.updated_at ? incoming : held;
}

// --- the candidate card -------------------------------------------------------------------

const HIDDEN_WHAT: Record<string, string> = {
  'the name': 'name',
  'the phone': 'phones',
  'the email': 'email',
  'other contacts': 'other_contacts',
  'the employers': 'experience',
};

/**
 * A field the applicant hid comes as the hub's English placeholder "Applicant 1234 hid the
 * name"; this gives the hidden field and the resume id so the UI can say it in its language.
 */
export function parsePlaceholder(value: string | null | undefined): { field: string; resumeId: string } | null {
  if (!value) return null;
  const m = /^Applicant (\S+) hid (the name|the phone|the email|other contacts|the employers)$/.exec(value.trim());
  return m ? { field: HIDDEN_WHAT[m[2]], resumeId: m[1] } : null;
}

/** The board chat's limit: replies left before the applicant must answer. */
export function chatAllowance(inARow: number | null, limit: number | null): { left: number; reached: boolean } | null {
  if (inARow === null || limit === null) return null;
  const left = Math.max(0, limit - inARow);
  return { left, reached: left === 0 };
}

// --- the OAuth connect ------------------------------------------------------------------

export type ConnectResult =
  | { kind: 'connected'; account_id: string | null; board_account: BoardAccountInfo | null }
  | { kind: 'error'; code: string; message: string };

export const CALLBACK_PATH = '/api/v1/oauth/hh/callback';

/**
 * Reads where the board's redirect left the connect window. Today the hub's callback answers
 * JSON (`{account_id, board_account}` or `{error, message}`); a hub that redirects back into
 * the workspace instead adds `board_connected=<id>` or `board_error=<code>` to the address.
 * `null`: not finished (still on the board, or unreadable).
 */
export function readConnectResult(href: string, bodyText: string | null): ConnectResult | null {
  let url: URL;
  try {
    url = new URL(href);
  } catch {
    return null;
  }
  const q = url.searchParams;
  if (q.has('board_connected')) return { kind: 'connected', account_id: q.get('board_connected'), board_account: null };
  if (q.has('board_error')) {
    return { kind: 'error', code: q.get('board_error') || 'board_refused', message: q.get('message') ?? '' };
  }
  if (url.pathname !== CALLBACK_PATH || bodyText === null) return null;
  try {
    const body = JSON.parse(bodyText) as Record<string, unknown>;
    if (typeof body.error === 'string') {
      return { kind: 'error', code: body.error, message: typeof body.message === 'string' ? body.message : '' };
    }
    if (body.board_account && typeof body.board_account === 'object') {
      return {
        kind: 'connected',
        account_id: typeof body.account_id === 'string' ? body.account_id : null,
        board_account: body.board_account as BoardAccountInfo,
      };
    }
  } catch {
    // not JSON yet (still loading) or an HTML error page
  }
  return bodyText.trim() ? { kind: 'error', code: 'board_refused', message: bodyText.slice(0, 200) } : null;
}
