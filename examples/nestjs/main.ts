/**
 * Recipe: NestJS on Express, part 3: the bootstrap. express-session is mounted on the Express instance, as
 * Nest's session documentation does. `createNestApp` is what a `main.ts` calls before `app.listen(3000)`.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestApplicationOptions } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import session from 'express-session';
import type { ChargebeePortalLogoutOptions } from '../../src';
import { AppModule } from './app.module';

export async function createNestApp(options: {
  chargebee: ChargebeePortalLogoutOptions;
  sessionSecret: string;
  logger?: NestApplicationOptions['logger'];
}): Promise<NestExpressApplication> {
  // Nest types its options as classes; its documentation passes plain objects, as here.
  /* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment */
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot(options.chargebee),
    options.logger === undefined ? {} : { logger: options.logger },
  );
  /* eslint-enable @typescript-eslint/no-unsafe-class-instance-assignment */
  app.use(session({ secret: options.sessionSecret, resave: false, saveUninitialized: false }));
  app.enableShutdownHooks();
  return app;
}
