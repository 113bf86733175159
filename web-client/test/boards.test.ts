import { describe, expect, it } from 'vitest';
import type { Application, BoardStatus, MappingView, Pipeline } from '../src/api/types';
import { translate } from '../src/i18n';
import {
  applyImportEvent,
  boardSync,
  chatAllowance,
  choosePipeline,
  countersAgree,
  mappingBody,
  mappingForm,
  mappingProblems,
  mergeApplications,
  newerApplication,
  parsePlaceholder,
  readConnectResult,
  stageFor,
  stateFor,
} from '../src/state/boards';

const STAGES = ['Отклик', 'Рассмотрение', 'Телефонное интервью', 'Собеседование', 'Оффер', 'Выход на работу', 'Отказ'];

function pipeline(id: string, names = STAGES): Pipeline {
  return {
    id,
    name: id,
    is_default: id === 'p1',
    stages: names.map((name, position) => ({ id: `${id}-s${position}`, pipeline_id: id, name, position })),
    created_at: '2026-11-27T09:00:00.000Z',
  };
}

const P1 = pipeline('p1');
const P2 = pipeline('p2', ['Отклик', 'Собеседование', 'Отказ']);
const ORDER = ['response', 'consider', 'phone_interview', 'assessment', 'interview', 'offer', 'hired', 'discard_by_employer'];

/** The hub's default mapping on the default pipeline. */
function defaultView(patch: Partial<MappingView> = {}): MappingView {
  return {
    mode: 'extended',
    pipeline_id: 'p1',
    responses_stage_id: 'p1-s0',
    invitations_stage_id: 'p1-s3',
    state_stages: {
      response: 'p1-s0',
      consider: 'p1-s1',
      assessment: 'p1-s1',
      phone_interview: 'p1-s2',
      interview: 'p1-s3',
      offer: 'p1-s4',
      hired: 'p1-s5',
      discard_by_employer: 'p1-s6',
    },
    board_states: ORDER.map((id) => ({ id, name: id })),
    ...patch,
  };
}

function application(patch: Partial<Application> = {}): Application {
  return {
    id: 'a1',
    contact_id: 'c1',
    vacancy_id: 'v1',
    vacancy_name: 'Курьер',
    thread_id: 't1',
    stage_id: 'p1-s0',
    stage_name: 'Отклик',
    stage_changed_at: null,
    source: 'hh',
    board_account_id: 'acc',
    board_negotiation_id: '3000001',
    board_state_id: 'response',
    board_state_name: 'Отклик',
    board_chat_id: '5000001',
    board_resume_id: 'r1',
    board_created_at: '2026-01-15T09:00:01+0300',
    board_updated_at: null,
    resume_upload_id: null,
    card: null,
    created_at: '2026-11-27T09:00:00.000Z',
    updated_at: '2026-11-27T09:00:00.000Z',
    ...patch,
  };
}

describe('the status mapping form', () => {
  it('a_hub_without_responsible_user_id_gets_no_such_key_back', () => {
    const form = mappingForm(defaultView());
    expect(form.hasResponsible).toBe(false);
    expect(mappingBody(form)).not.toHaveProperty('responsible_user_id');
  });

  it('a_hub_with_responsible_user_id_gets_it_back_even_when_null', () => {
    const form = mappingForm(defaultView({ responsible_user_id: null }));
    expect(form.hasResponsible).toBe(true);
    expect(mappingBody(form).responsible_user_id).toBeNull();
    expect(mappingBody({ ...form, responsible_user_id: 'u7' }).responsible_user_id).toBe('u7');
  });

  it('simple_mode_sends_only_refusals_in_the_state_table', () => {
    const form = { ...mappingForm(defaultView()), mode: 'simple' as const };
    const body = mappingBody(form);
    expect(body.mode).toBe('simple');
    expect(body.state_stages).toEqual({ discard_by_employer: 'p1-s6' });
    expect(body.responses_stage_id).toBe('p1-s0');
    expect(body.invitations_stage_id).toBe('p1-s3');
  });

  it('extended_mode_drops_states_without_a_stage', () => {
    const form = mappingForm(defaultView());
    form.state_stages.offer = '';
    const body = mappingBody(form);
    expect(body.state_stages).not.toHaveProperty('offer');
    expect(body.state_stages.hired).toBe('p1-s5');
  });

  it('another_pipeline_keeps_stages_by_name_and_empties_the_rest', () => {
    const form = choosePipeline(mappingForm(defaultView()), [P1, P2], 'p2');
    expect(form.pipeline_id).toBe('p2');
    expect(form.responses_stage_id).toBe('p2-s0');
    expect(form.invitations_stage_id).toBe('p2-s1');
    expect(form.state_stages).toEqual({ response: 'p2-s0', interview: 'p2-s1', discard_by_employer: 'p2-s2' });
    expect(mappingProblems(form, [P1, P2])).toEqual([]);
  });

  it('simple_mode_needs_both_stages_and_stages_of_the_chosen_pipeline', () => {
    const form = { ...mappingForm(defaultView()), mode: 'simple' as const, invitations_stage_id: '' };
    expect(mappingProblems(form, [P1])).toEqual(['mapping.problem.invitations']);
    expect(mappingProblems({ ...form, invitations_stage_id: 'p2-s1' }, [P1, P2])).toEqual(['mapping.problem.foreignStage']);
    expect(mappingProblems({ ...form, pipeline_id: '' }, [P1])).toContain('mapping.problem.pipeline');
  });
});

describe('the board sync of an application', () => {
  const m = defaultView();

  it('stage_for_and_state_for_follow_the_hub', () => {
    expect(stageFor(m, 'assessment')).toBe('p1-s1');
    // Two states on one stage: the first in the board's order.
    expect(stateFor(m, 'p1-s1', ORDER)).toBe('consider');
    const simple = { ...m, mode: 'simple', state_stages: { discard_by_employer: 'p1-s6' } };
    expect(stageFor(simple, 'response')).toBe('p1-s0');
    expect(stageFor(simple, 'offer')).toBe('p1-s3');
    expect(stageFor(simple, 'discard_by_applicant')).toBeNull();
    expect(stateFor(simple, 'p1-s3', ORDER)).toBeNull();
  });

  it('an_application_whose_board_state_leads_to_its_stage_is_synced', () => {
    expect(boardSync(application(), m, ORDER)).toEqual({ kind: 'synced' });
    expect(boardSync(application({ stage_id: 'p1-s1', board_state_id: 'assessment' }), m, ORDER)).toEqual({ kind: 'synced' });
  });

  it('a_stage_the_board_does_not_have_is_shown_as_such', () => {
    const simple = { ...m, mode: 'simple', state_stages: {} };
    expect(boardSync(application({ stage_id: 'p1-s4' }), simple, ORDER)).toEqual({ kind: 'not_on_board' });
  });

  it('a_board_state_behind_the_stage_is_a_difference', () => {
    expect(boardSync(application({ stage_id: 'p1-s3' }), m, ORDER)).toEqual({ kind: 'differs', expected: 'interview' });
  });

  it('a_local_application_has_no_board_side', () => {
    expect(boardSync(application({ board_account_id: null, board_state_id: null }), m, ORDER)).toEqual({ kind: 'local' });
  });
});

describe('import progress', () => {
  const status: BoardStatus = {
    connected: true,
    board_account: null,
    initial_done: false,
    position_vacancy_id: '90000001',
    position_collection: 0,
    position_page: 1,
    responses_loaded: 3,
    applications_created: 2,
    differences: [{ negotiation_id: '3000009', board_vacancy_id: '90000001', reason: 'no resume' }],
    health: 'ok',
    last_error: null,
  };

  it('counters_agree_when_every_response_is_an_application_or_a_difference', () => {
    expect(countersAgree(status)).toBe(true);
    expect(countersAgree({ ...status, responses_loaded: 4 })).toBe(false);
  });

  it('an_event_moves_the_counters_and_asks_for_the_list_only_when_it_changed', () => {
    const same = applyImportEvent(status, { account_id: 'acc', initial_done: false, responses_loaded: 5, applications_created: 4, differences: 1 });
    expect(same.status.responses_loaded).toBe(5);
    expect(same.status.applications_created).toBe(4);
    expect(same.reload).toBe(false);
    const more = applyImportEvent(status, { account_id: 'acc', initial_done: true, responses_loaded: 5, applications_created: 3, differences: 2 });
    expect(more.reload).toBe(true);
    expect(more.status.initial_done).toBe(true);
  });
});

describe('applications of an applicant', () => {
  it('an_older_copy_never_replaces_a_newer_one', () => {
    const newer = application({ stage_id: 'p1-s3', updated_at: '2026-11-27T09:05:00.000Z' });
    const older = application({ stage_id: 'p1-s1', updated_at: '2026-11-27T09:01:00.000Z' });
    const list = [newer];
    expect(mergeApplications(list, [older])).toBe(list);
    expect(newerApplication(newer, older)).toBe(newer);
    expect(newerApplication(older, newer)).toBe(newer);
  });

  it('a_new_application_joins_newest_first', () => {
    const a = application({ id: 'a1', created_at: '2026-11-27T09:00:00.000Z' });
    const b = application({ id: 'a2', created_at: '2026-11-27T10:00:00.000Z' });
    const c = application({ id: 'a3', created_at: '2026-11-27T08:00:00.000Z' });
    expect(mergeApplications([a], [b, c]).map((x) => x.id)).toEqual(['a2', 'a1', 'a3']);
  });
});

describe('the candidate card', () => {
  it('hidden_field_placeholders_are_recognised', () => {
    expect(parsePlaceholder('Applicant 000000005eed hid the name')).toEqual({ field: 'name', resumeId: '000000005eed' });
    expect(parsePlaceholder('Applicant 1234 hid the phone')).toEqual({ field: 'phones', resumeId: '1234' });
    expect(parsePlaceholder('Applicant 1234 hid the email')?.field).toBe('email');
    expect(parsePlaceholder('Applicant 1234 hid other contacts')?.field).toBe('other_contacts');
    expect(parsePlaceholder('Мария Курьерова')).toBeNull();
    expect(parsePlaceholder(null)).toBeNull();
  });

  it('every_hidden_field_has_its_words_in_both_languages', () => {
    for (const what of ['the name', 'the phone', 'the email', 'other contacts', 'the employers']) {
      const p = parsePlaceholder(`Applicant 77 hid ${what}`);
      expect(p).not.toBeNull();
      const key = `card.hidden.${p?.field}`;
      expect(translate('ru', key, { id: '77' })).toMatch(/^Соискатель 77 скрыл\(а\) /);
      expect(translate('en', key, { id: '77' })).toBe(`Applicant 77 hid ${what}`);
    }
  });

  it('the_chat_allowance_counts_down_to_the_limit', () => {
    expect(chatAllowance(2, 5)).toEqual({ left: 3, reached: false });
    expect(chatAllowance(5, 5)).toEqual({ left: 0, reached: true });
    expect(chatAllowance(7, 5)).toEqual({ left: 0, reached: true });
    expect(chatAllowance(null, null)).toBeNull();
  });
});

describe('the OAuth connect window', () => {
  const base = 'http://127.0.0.1:8080/api/v1/oauth/hh/callback?code=x&state=y';

  it('the_callbacks_json_tells_who_connected', () => {
    const body = JSON.stringify({ account_id: 'acc', board_account: { name: 'Админова Ольга', role: 'admin' } });
    const r = readConnectResult(base, body);
    expect(r?.kind).toBe('connected');
    expect(r?.kind === 'connected' && r.board_account?.role).toBe('admin');
  });

  it('the_callbacks_error_is_reported_with_its_code', () => {
    const body = JSON.stringify({ error: 'invalid_state', message: 'unknown or expired OAuth state' });
    expect(readConnectResult(base, body)).toEqual({ kind: 'error', code: 'invalid_state', message: 'unknown or expired OAuth state' });
  });

  it('a_window_still_on_the_board_or_loading_is_not_finished', () => {
    expect(readConnectResult('http://hh.example/oauth/authorize?x=1', '<html>')).toBeNull();
    expect(readConnectResult(base, '')).toBeNull();
    expect(readConnectResult('about:blank', '')).toBeNull();
  });

  it('a_hub_that_redirects_into_the_workspace_is_understood_too', () => {
    expect(readConnectResult('http://127.0.0.1:8080/admin/channels?board_connected=acc', null)).toEqual({
      kind: 'connected',
      account_id: 'acc',
      board_account: null,
    });
    expect(readConnectResult('http://127.0.0.1:8080/admin/channels?board_error=board_refused', null)?.kind).toBe('error');
  });
});
