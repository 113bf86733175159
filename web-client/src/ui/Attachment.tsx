// An attachment: uploads need the Authorization header, so they are fetched by script and
// shown from a blob URL (images inline, everything else as a download).
import { useEffect, useState } from 'react';
import type { ApiClient } from '../api/http';
import type { Attachment } from '../api/types';
import { useI18n } from './i18n';

const PREVIEWABLE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

export function AttachmentView({ api, attachment }: { api: ApiClient; attachment: Attachment }) {
  const { fmt } = useI18n();
  const [url, setUrl] = useState<string | null>(null);
  const image = PREVIEWABLE.has(attachment.content_type);

  useEffect(() => {
    if (!image) return;
    let revoked = false;
    let made: string | null = null;
    api.blob(`/uploads/${attachment.upload_id}`).then((b) => {
      if (revoked) return;
      made = URL.createObjectURL(b);
      setUrl(made);
    }, () => undefined);
    return () => {
      revoked = true;
      if (made) URL.revokeObjectURL(made);
    };
  }, [api, attachment.upload_id, image]);

  async function download() {
    const blob = await api.blob(`/uploads/${attachment.upload_id}`);
    const href = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = href;
    a.download = attachment.file_name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(href), 10_000);
  }

  return (
    <span className="attachment" data-testid="attachment">
      {image && url && <img src={url} alt={attachment.file_name} className="preview" />}
      <button type="button" className="link" onClick={() => void download()}>
        {attachment.file_name}
      </button>{' '}
      <span className="muted">{fmt.fileSize(attachment.size)}</span>
    </span>
  );
}
