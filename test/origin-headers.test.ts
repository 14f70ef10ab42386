import {
  deviceFromUserAgent,
  DEVICE_MAX_LENGTH,
  emailHeaders,
  eventSuppressionHeaders,
  isSafeHeaderValue,
  normalizeIp,
} from '../src/base/origin-headers';

describe('normalizeIp', () => {
  it('keeps IPv4 as is', () => {
    expect(normalizeIp('203.0.113.7')).toBe('203.0.113.7');
  });

  it('keeps IPv6, lower-cased', () => {
    expect(normalizeIp('2001:DB8::1')).toBe('2001:db8::1');
  });

  it('writes IPv4-mapped IPv6 as plain IPv4', () => {
    expect(normalizeIp('::ffff:198.51.100.4')).toBe('198.51.100.4');
    expect(normalizeIp('::FFFF:127.0.0.1')).toBe('127.0.0.1');
  });

  it('drops a zone index', () => {
    expect(normalizeIp('fe80::1%eth0')).toBe('fe80::1');
  });

  it.each([[undefined], [''], ['not-an-ip'], ['1.2.3.4, 5.6.7.8'], ['1.2.3.4\r\nx: y'], [42]])(
    'gives undefined for %p',
    (value) => {
      expect(normalizeIp(value)).toBeUndefined();
    },
  );
});

describe('deviceFromUserAgent', () => {
  it('keeps an ordinary user agent', () => {
    const ua = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';
    expect(deviceFromUserAgent(ua)).toBe(ua);
  });

  it('replaces CR, LF, NUL and other control characters with one space', () => {
    expect(deviceFromUserAgent('curl/8\r\nX-Evil: 1\u0000\u007f end')).toBe('curl/8 X-Evil: 1 end');
  });

  it('replaces bytes outside visible ASCII', () => {
    expect(deviceFromUserAgent('Bröwser/1 ☃')).toBe('Br wser/1');
  });

  it(`cuts at ${DEVICE_MAX_LENGTH} characters`, () => {
    expect(deviceFromUserAgent('a'.repeat(10_000))).toHaveLength(DEVICE_MAX_LENGTH);
  });

  it('gives undefined for missing, empty or control-only values', () => {
    expect(deviceFromUserAgent(undefined)).toBeUndefined();
    expect(deviceFromUserAgent('')).toBeUndefined();
    expect(deviceFromUserAgent('\r\n\t')).toBeUndefined();
  });
});

describe('emailHeaders', () => {
  it('sends an ASCII address in chargebee-request-origin-user', () => {
    expect(emailHeaders('jane.doe+billing@example.com')).toEqual({
      'chargebee-request-origin-user': 'jane.doe+billing@example.com',
    });
  });

  it('sends a non-ASCII address as Base64 of UTF-8 in the -encoded header only', () => {
    const headers = emailHeaders('zoë@exämple.com');
    expect(headers).toEqual({
      'chargebee-request-origin-user-encoded': Buffer.from('zoë@exämple.com', 'utf8').toString('base64'),
    });
    expect(Buffer.from(headers['chargebee-request-origin-user-encoded'], 'base64').toString('utf8')).toBe(
      'zoë@exämple.com',
    );
  });

  it('encodes the composed (NFC) form, so both spellings of ë give one header', () => {
    expect(emailHeaders('zoe\u0308@example.com')).toEqual(emailHeaders('zo\u00eb@example.com'));
  });

  it('keeps ASCII quotes, which are legal in addresses', () => {
    expect(emailHeaders('"john doe"@example.com')).toEqual({
      'chargebee-request-origin-user': '"john doe"@example.com',
    });
  });

  it('sends nothing for an address with CR or LF inside', () => {
    expect(emailHeaders('a@example.com\r\nX-Evil: 1')).toEqual({});
  });

  it('sends nothing for over-long, empty or non-string values', () => {
    expect(emailHeaders(`${'a'.repeat(10_000)}@example.com`)).toEqual({});
    expect(emailHeaders('   ')).toEqual({});
    expect(emailHeaders(undefined)).toEqual({});
    expect(emailHeaders({ email: 'a@b.c' })).toEqual({});
  });
});

describe('eventSuppressionHeaders', () => {
  it('sends all-disabled for each suppressed kind only', () => {
    expect(eventSuppressionHeaders({ webhooks: true, emails: false })).toEqual({
      'chargebee-event-webhook': 'all-disabled',
    });
    expect(eventSuppressionHeaders({ webhooks: true, emails: true, actions: true })).toEqual({
      'chargebee-event-webhook': 'all-disabled',
      'chargebee-event-email': 'all-disabled',
      'chargebee-event-actions': 'all-disabled',
    });
  });

  it('sends nothing by default', () => {
    expect(eventSuppressionHeaders(undefined)).toEqual({});
    expect(eventSuppressionHeaders({})).toEqual({});
  });
});

describe('isSafeHeaderValue', () => {
  it('accepts visible ASCII and refuses control characters, non-ASCII and empty strings', () => {
    expect(isSafeHeaderValue('all-disabled')).toBe(true);
    expect(isSafeHeaderValue('a\nb')).toBe(false);
    expect(isSafeHeaderValue('ë')).toBe(false);
    expect(isSafeHeaderValue('')).toBe(false);
  });
});
