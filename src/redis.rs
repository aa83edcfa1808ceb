//! The Redis connection pool, to one server or to a cluster.

use fred::prelude::*;

use crate::config::Settings;

/// Connects a pool of `settings.redis_pool_size` clients. The clients reconnect by themselves
/// after Redis comes back; commands sent while it is away fail fast instead of piling up.
pub async fn connect(settings: &Settings) -> Result<Pool, Error> {
    let mut config = Config::from_url(&settings.redis_url)?;
    if settings.redis_cluster
        && let ServerConfig::Centralized { server } = &config.server
    {
        config.server = ServerConfig::new_clustered(vec![(server.host.to_string(), server.port)]);
    }
    config.fail_fast = true;
    let pool = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = std::time::Duration::from_secs(2);
            c.internal_command_timeout = std::time::Duration::from_secs(2);
        })
        .with_performance_config(|p| {
            p.default_command_timeout = std::time::Duration::from_secs(2);
        })
        .set_policy(ReconnectPolicy::new_constant(0, 200))
        .build_pool(settings.redis_pool_size)?;
    pool.init().await?;
    Ok(pool)
}
