/**
 * Recipe: NestJS on Express, part 2: the app. `MiddlewareConsumer` puts the portal logout on `POST /logout`,
 * after the session check; the controller that creates portal sessions remembers them, and the logout
 * handler reads the outcome from `res.locals`.
 *
 * Nest runs middleware before guards: an auth guard has not run yet when the portal logout does. So the
 * session check here is middleware too, and the email comes from the session, not from a guard's `req.user`.
 */
import {
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  Module,
  Post,
  Req,
  RequestMethod,
  Res,
  UnauthorizedException,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ChargebeeClient, type ChargebeePortalLogoutOptions, type PortalLogoutMiddleware } from '../../src';
import { PORTAL_LOGOUT, PortalLogoutModule } from './portal-logout.module';

declare module 'express-session' {
  interface SessionData {
    user?: { email: string; customerId: string };
  }
}

/** The app's own session check, as middleware so that it runs before the portal logout. */
function requireSession(req: Request, res: Response, next: NextFunction): void {
  if (req.session?.user) next();
  else res.status(401).json({ message: 'Sign in first' });
}

@Controller()
class AccountController {
  constructor(
    @Inject(ChargebeeClient) private readonly chargebee: ChargebeeClient,
    @Inject(PORTAL_LOGOUT) private readonly portalLogout: PortalLogoutMiddleware,
  ) {}

  @Post('login')
  @HttpCode(200)
  login(@Req() req: Request, @Body() body: { email?: unknown }) {
    // A stand-in for your real sign-in.
    if (typeof body?.email !== 'string' || !body.email.includes('@')) throw new UnauthorizedException();
    req.session.user = { email: body.email, customerId: `cus_${body.email.split('@')[0]}` };
    return { signedIn: true };
  }

  @Post('billing/portal')
  async openPortal(@Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const user = req.session.user;
    if (!user) throw new UnauthorizedException();
    const portal = await this.chargebee.create({ customerId: user.customerId });
    await this.portalLogout.remember(req, res, portal);
    return { accessUrl: portal.access_url };
  }

  // The portal logout ran before this handler (see configure()); it left its outcome in res.locals.
  @Post('logout')
  @HttpCode(200)
  async logout(@Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const outcome = res.locals.chargebeePortalLogout;
    await new Promise<void>((resolve, reject) => {
      req.session.destroy((err?: Error) => (err ? reject(err) : resolve()));
    });
    return { signedOut: true, portalSessions: outcome?.result };
  }

  @Get('healthz/chargebee')
  health(@Req() req: Request, @Res() res: Response) {
    this.portalLogout.healthCheck()(req, res);
  }
}

@Module({})
export class AppModule implements NestModule {
  static forRoot(chargebee: ChargebeePortalLogoutOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        PortalLogoutModule.forRoot({
          ...chargebee,
          originHeaders: { email: (req) => req.session?.user?.email },
        }),
      ],
      controllers: [AccountController],
    };
  }

  constructor(@Inject(PORTAL_LOGOUT) private readonly portalLogout: PortalLogoutMiddleware) {}

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(requireSession, this.portalLogout).forRoutes({ path: 'logout', method: RequestMethod.POST });
  }
}
