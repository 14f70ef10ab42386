/**
 * `chargebee-portal-logout/redis`: the deferred-logout queue on Redis, for apps with several instances.
 * Needs the `redis` package (node-redis 5 or 6), an optional peer dependency of this package.
 */
export {
  RedisDeferredLogoutStore,
  DEFAULT_REDIS_PREFIX,
  DEFAULT_REDIS_MAX_QUEUED,
  DEFAULT_LEASE_MS,
  DEFAULT_COMMAND_TIMEOUT_MS,
  type RedisDeferredLogoutStoreOptions,
  type RedisClientLike,
  type RedisScriptArguments,
} from './store';
