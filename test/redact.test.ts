import { apiKeyForms, emailsOfHeaders, Redactor, secretForms } from '../src/base/redact';

const KEY = 'live_RedactKey_9z';
const EMAIL = 'Zoë.Person@Exämple.com';

describe('Redactor', () => {
  const redactor = new Redactor([...apiKeyForms(KEY), ...secretForms(EMAIL), ...secretForms('portal_Abc')]);

  it.each([
    ['the key in another casing', `key ${KEY.toUpperCase()} refused`],
    ['the Basic credentials', `Authorization: Basic ${Buffer.from(`${KEY}:`).toString('base64')}`],
    ['the email upper-cased', `no user ${EMAIL.toUpperCase()}`],
    ['the email percent-encoded', `user=${encodeURIComponent(EMAIL)}`],
    ['the email in Base64', `user ${Buffer.from(EMAIL).toString('base64')}`],
    ['the email decomposed (NFD)', `user ${EMAIL.normalize('NFD')}`],
    ['the ID', 'session PORTAL_ABC is locked'],
  ])('removes %s', (_name, text) => {
    const cleaned = redactor.clean(text, 300)!;
    expect(cleaned).toContain('[redacted]');
    for (const secret of [KEY, 'portal_abc', 'zo', 'person@'])
      expect(cleaned.toLowerCase()).not.toContain(secret.toLowerCase());
  });

  it('bounds the text, keeps printable ASCII, and gives undefined for what is not a non-empty string', () => {
    expect(redactor.clean('x'.repeat(1000), 300)).toBe(`${'x'.repeat(300)}...`);
    expect(redactor.clean('a\u0000\u0007b\nc', 300)).toBe('a b c');
    expect(redactor.clean(42, 300)).toBeUndefined();
    expect(redactor.clean('', 300)).toBeUndefined();
  });

  it('never leaves part of a secret cut at the edge of the searched window', () => {
    // 64 KB of control characters collapse into one space: what was at the window's edge comes to the front.
    for (let shift = 0; shift < 40; shift += 1) {
      const text = `${'\u0000'.repeat(64 * 1024 - shift - 10)}${KEY}${KEY}`;
      const cleaned = redactor.clean(text, 300) ?? '';
      expect(cleaned).not.toMatch(/live_?R/i);
    }
  });

  it('reads the email of the origin headers, plain or Base64', () => {
    expect(emailsOfHeaders({ 'chargebee-request-origin-user': 'a@b.c' })).toEqual(['a@b.c']);
    const encoded = Buffer.from(EMAIL).toString('base64');
    expect(emailsOfHeaders({ 'chargebee-request-origin-user-encoded': encoded })).toEqual([encoded, EMAIL]);
  });
});
