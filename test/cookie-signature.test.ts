import cookieParser from 'cookie-parser';
import { readCookies, signCookieValue, unsignCookieValue } from '../src/remembered/cookie-signature';

describe('signCookieValue / unsignCookieValue', () => {
  it('round-trips a value with the same secret', () => {
    expect(unsignCookieValue(signCookieValue('j:["portal_1"]', 'secret'), ['secret'])).toBe('j:["portal_1"]');
  });

  it('accepts any of several secrets, for rotation', () => {
    expect(unsignCookieValue(signCookieValue('v', 'old'), ['new', 'old'])).toBe('v');
  });

  it('refuses a tampered value, a wrong secret and unsigned text', () => {
    const signed = signCookieValue('j:["portal_1"]', 'secret');
    expect(unsignCookieValue(signed.replace('portal_1', 'portal_2'), ['secret'])).toBe(false);
    expect(unsignCookieValue(signed, ['other'])).toBe(false);
    expect(unsignCookieValue('j:["portal_1"]', ['secret'])).toBe(false);
    expect(unsignCookieValue('s:nodot', ['secret'])).toBe(false);
  });

  it('uses the format cookie-parser verifies', () => {
    const signed = signCookieValue('hello', 'secret');
    expect(cookieParser.signedCookie(signed, 'secret')).toBe('hello');
  });
});

describe('readCookies', () => {
  it('finds and decodes one cookie among several', () => {
    expect(readCookies('a=1; chargebee=%5B%22x%22%5D; b=2', 'chargebee')).toEqual(['["x"]']);
    expect(readCookies('c=1; d=2; c=3', 'c')).toEqual(['1', '3']);
  });

  it('strips surrounding quotes', () => {
    expect(readCookies('c="quoted"', 'c')).toEqual(['quoted']);
  });

  it('returns the raw text when it is not valid percent-encoding', () => {
    expect(readCookies('c=%E0%A4%A', 'c')).toEqual(['%E0%A4%A']);
  });

  it('returns undefined when absent or when there is no header', () => {
    expect(readCookies('a=1', 'c')).toEqual([]);
    expect(readCookies(undefined, 'c')).toEqual([]);
  });
});
