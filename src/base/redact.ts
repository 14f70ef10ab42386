/**
 * Redaction of what comes from outside before it reaches an error or a log. An error answer of Chargebee
 * (or a proxy in front of it) may quote what it was sent: the API key, the Authorization header, the
 * portal-session ID, the customer's email; every string taken from an answer goes through
 * {@link Redactor.clean}: each secret is removed in any casing, percent-encoded and Base64-encoded, and the
 * text is bounded. An error of the app's own functions, stores or registries may hold emails or customer
 * IDs: {@link scrub} removes email addresses and what the caller knows of.
 */

/** Text replacing a secret. */
export const REDACTED = '[redacted]';
/** Longest message taken from an answer. */
export const MAX_MESSAGE_LENGTH = 300;
/** Longest code, type or parameter name taken from an answer. */
export const MAX_FIELD_LENGTH = 100;
/** Only this much of a string is ever searched: enough for any message worth reading, bounded work. */
const EMAIL = /[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+/g;
const SEARCH_WINDOW = 64 * 1024;

const REGEXP_SYNTAX = /[\\^$.*+?()[\]{}|/]/g;

function base64(text: string): string[] {
  const standard = Buffer.from(text, 'utf8').toString('base64').replace(/=+$/, '');
  return [standard, standard.replace(/\+/g, '-').replace(/\//g, '_')];
}

/** The forms a secret may take in an echoed answer: as is, Unicode-normalised, percent-encoded, Base64. */
export function secretForms(secret: string | undefined): string[] {
  if (typeof secret !== 'string' || secret === '') return [];
  const forms = new Set<string>();
  for (const text of new Set([secret, secret.normalize('NFC'), secret.normalize('NFD')])) {
    forms.add(text);
    forms.add(encodeURIComponent(text));
    for (const encoded of base64(text)) forms.add(encoded);
  }
  return [...forms].filter((form) => form !== '');
}

/** The forms of an API key, its HTTP Basic credentials (`Base64(key + ":")`) included. */
export function apiKeyForms(apiKey: string): string[] {
  return [...secretForms(apiKey), ...base64(`${apiKey}:`)];
}

/** The customer's email from the origin headers of a call (plain, or Base64 in `-user-encoded`). */
export function emailsOfHeaders(headers: Record<string, string | undefined>): string[] {
  const emails: string[] = [];
  const plain = headers['chargebee-request-origin-user'];
  if (plain) emails.push(plain);
  const encoded = headers['chargebee-request-origin-user-encoded'];
  if (encoded) {
    emails.push(encoded);
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    if (decoded) emails.push(decoded);
  }
  return emails;
}

/** Removes a fixed set of secrets from text. Built on the error path only: a healthy call builds none. */
export class Redactor {
  private readonly pattern: RegExp | undefined;
  private readonly longest: number;

  /** @param forms every form of every secret, as given by {@link secretForms} and {@link apiKeyForms} */
  constructor(forms: Iterable<string>) {
    const unique = [...new Set([...forms].filter((f) => typeof f === 'string' && f !== ''))];
    // Longest first, so that a secret is removed whole before a shorter one inside it.
    unique.sort((a, b) => b.length - a.length);
    this.longest = unique[0]?.length ?? 0;
    this.pattern =
      unique.length === 0
        ? undefined
        : new RegExp(unique.map((f) => f.replace(REGEXP_SYNTAX, '\\$&')).join('|'), 'giu');
  }

  /** `text` with every secret replaced by `[redacted]`, whatever its casing. */
  redact(text: string): string {
    return this.pattern ? text.replace(this.pattern, REDACTED) : text;
  }

  /**
   * A string from an answer made safe for an error or a log: searched within its first 64 KB (a secret
   * cut at that edge is dropped with it), redacted, printable ASCII only, at most `max` characters.
   * `undefined` for anything that is not a non-empty string.
   */
  clean(value: unknown, max: number): string | undefined {
    if (typeof value !== 'string' || value === '') return undefined;
    const text = value.length > SEARCH_WINDOW ? value.slice(0, SEARCH_WINDOW - this.longest) : value;
    const cleaned = boundedText(this.redact(text), max).trim();
    return cleaned === '' ? undefined : cleaned;
  }
}

/** Printable ASCII, runs of anything else as one space, at most `max` characters. */
export function boundedText(text: string, max: number): string {
  const cleaned = text.replace(/[^\u0020-\u007e]+/g, ' ');
  return cleaned.length > max ? `${cleaned.slice(0, max)}...` : cleaned;
}

/**
 * `text` from outside (an error of the app's function, store or registry) without email addresses and
 * without any of `known` (IDs this call is about), in any of their forms.
 */
export function scrub(text: string, known: ReadonlyArray<string | undefined> = []): string {
  const forms = known.flatMap((secret) => secretForms(secret));
  const cleaned = forms.length > 0 ? new Redactor(forms).redact(text) : text;
  return cleaned.replace(EMAIL, REDACTED);
}
