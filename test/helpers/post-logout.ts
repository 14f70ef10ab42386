import http from 'node:http';
import type { PortalLogoutOutcome } from '../../src';

/**
 * Posts to `/logout` of a load-test app on loopback, naming the portal session in `x-portal-session`,
 * and resolves with the outcome the app echoes (rejects on any status but 200).
 */
export function postLogout(port: number, agent: http.Agent, id: string): Promise<PortalLogoutOutcome> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/logout', method: 'POST', agent, headers: { 'x-portal-session': id } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(JSON.parse(body) as PortalLogoutOutcome)
            : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}
