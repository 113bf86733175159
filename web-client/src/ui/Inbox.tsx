import type { Workspace } from '../app/workspace';
import { useI18n } from './i18n';

/** Applicant threads: the hub's threads API is not there yet (see docs/web-client.md). */
export function Inbox(_: { ws: Workspace }) {
  const { t } = useI18n();
  return (
    <section className="panel" aria-labelledby="inbox-title">
      <h1 id="inbox-title">{t('inbox.title')}</h1>
      <p className="placeholder" data-testid="inbox-placeholder">
        {t('inbox.placeholder')}
      </p>
    </section>
  );
}
