// The language context: the chosen language (kept in localStorage), `t` and Intl formatters.
import { createContext, useContext, useEffect, useMemo, useState } from 'react';
import type { ReactNode } from 'react';
import { formatLocale, makeFormatter, parseLang, translate } from '../i18n';
import type { Formatter, Lang, MessageKey } from '../i18n';

const LANG_KEY = 'jobers.lang';

export interface I18n {
  lang: Lang;
  setLang(lang: Lang): void;
  t(key: MessageKey, params?: Record<string, string | number>): string;
  fmt: Formatter;
}

const Ctx = createContext<I18n | null>(null);

function storedLang(): Lang {
  try {
    return parseLang(localStorage.getItem(LANG_KEY));
  } catch {
    return parseLang(null);
  }
}

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(storedLang);
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  const value = useMemo<I18n>(() => {
    const locale = formatLocale(lang, navigator.languages ?? [navigator.language]);
    return {
      lang,
      setLang(l) {
        try {
          localStorage.setItem(LANG_KEY, l);
        } catch {
          // private mode: the choice lasts for this page only
        }
        setLangState(l);
      },
      t: (key, params) => translate(lang, key, params),
      fmt: makeFormatter(locale),
    };
  }, [lang]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useI18n(): I18n {
  const v = useContext(Ctx);
  if (!v) throw new Error('useI18n outside I18nProvider');
  return v;
}

export function LangSwitch() {
  const { lang, setLang, t } = useI18n();
  return (
    <label className="lang-switch">
      <span>{t('lang.label')}</span>
      <select value={lang} onChange={(e) => setLang(parseLang(e.target.value))} data-testid="lang-switch">
        <option value="ru">Русский</option>
        <option value="en">English</option>
      </select>
    </label>
  );
}
