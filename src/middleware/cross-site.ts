import type { Request } from 'express';

/**
 * True for a request the browser marks as coming from another site (`Sec-Fetch-Site: cross-site`) with a
 * safe method (GET, HEAD): a link or an image on another site. Such a logout must not make the app call
 * Chargebee on the victim's behalf. Browsers send the header on every request since 2023; a request
 * without it (an old browser, a script) is not judged.
 */
export function isCrossSiteSafeRequest(req: Pick<Request, 'method' | 'headers'>): boolean {
  const site = req.headers['sec-fetch-site'];
  return (
    (req.method === 'GET' || req.method === 'HEAD') &&
    typeof site === 'string' &&
    site.trim().toLowerCase() === 'cross-site'
  );
}
