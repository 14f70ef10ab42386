/**
 * Recipe: NestJS on Express, part 1: the middleware and its Chargebee client as providers. The middleware
 * object is provided under a token; the client it uses is provided under its class, so that controllers
 * that create portal sessions inject it. Tokens are explicit (`@Inject`), so no `emitDecoratorMetadata` is
 * needed. In your app the import is `from 'chargebee-portal-logout'`.
 */
import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import {
  chargebeePortalLogout,
  ChargebeeClient,
  type ChargebeePortalLogoutOptions,
  type PortalLogoutMiddleware,
} from '../../src';

/** The DI token of the middleware object (`remember`, `stats`, `healthCheck`, `close`). */
export const PORTAL_LOGOUT = Symbol('PORTAL_LOGOUT');

/** Drains the deferred-logout queue when Nest shuts down (call `app.enableShutdownHooks()`). */
@Injectable()
class PortalLogoutShutdown implements OnApplicationShutdown {
  constructor(@Inject(PORTAL_LOGOUT) private readonly portalLogout: PortalLogoutMiddleware) {}

  onApplicationShutdown(): Promise<void> {
    return this.portalLogout.close();
  }
}

// A dynamic module is a class with a static forRoot(): Nest's own pattern.
@Module({})
// eslint-disable-next-line @typescript-eslint/no-extraneous-class
export class PortalLogoutModule {
  static forRoot(options: ChargebeePortalLogoutOptions): DynamicModule {
    return {
      module: PortalLogoutModule,
      global: true,
      providers: [
        { provide: PORTAL_LOGOUT, useFactory: () => chargebeePortalLogout(options) },
        {
          provide: ChargebeeClient,
          useFactory: (portalLogout: PortalLogoutMiddleware) => portalLogout.clientFor(),
          inject: [PORTAL_LOGOUT],
        },
        PortalLogoutShutdown,
      ],
      exports: [PORTAL_LOGOUT, ChargebeeClient],
    };
  }
}
