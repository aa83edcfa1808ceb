//! The Redis connection pool: to one server, to the primary that Sentinel names, or to a
//! cluster.
//!
//! `REDIS_URL` is one URL, or a comma-separated list of cluster nodes
//! (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`; the scheme may be left out after the
//! first). A list always means a cluster; `REDIS_CLUSTER=1` makes a single URL a cluster's
//! seed node. On a cluster the client learns the slot map from any node it reaches and
//! follows `MOVED`/`ASK` by itself: every sale script touches keys of one hash tag, so each
//! call goes to the one primary that owns the sale.
//!
//! A Redis on the same machine may be reached by its Unix socket,
//! `redis+unix:///run/redis/redis.sock`: no TCP stack between the two, which spares the app
//! and Redis about a tenth of a join's CPU (BENCHMARKS.md). A socket is one server, never a
//! cluster's node.
//!
//! `BOXOFFICE_SESSION_REDIS_URL` puts the sessions in a Redis of their own (see
//! [`connect_sessions`]).
//!
//! With `REDIS_SENTINELS` the client asks the Sentinel nodes for the primary of
//! `REDIS_SENTINEL_SERVICE`, checks its role, and asks again on every reconnect: when the
//! primary dies and Sentinel promotes a replica, the connections drop, commands wait for a
//! reconnection up to the command timeout (then a 503 to the buyer), and the first reconnect
//! after the promotion reaches the new primary.

use fred::prelude::*;

use crate::config::Settings;

/// Connects a pool of `settings.redis_pool_size` clients. The clients reconnect by themselves
/// after Redis comes back; commands sent while it is away fail fast instead of piling up.
pub async fn connect(settings: &Settings) -> Result<Pool, Error> {
    let config = if settings.redis_sentinels.trim().is_empty() {
        config(&settings.redis_url, settings.redis_cluster)?
    } else {
        through_sentinel(
            &settings.redis_url,
            &settings.redis_sentinels,
            &settings.redis_sentinel_service,
        )?
    };
    pool(config, settings.redis_pool_size).await
}

/// The pool of the session store: `BOXOFFICE_SESSION_REDIS_URL`'s Redis when set (a list of
/// nodes is a cluster), else `None`: the sessions share the sales' pool.
pub async fn connect_sessions(settings: &Settings) -> Result<Option<Pool>, Error> {
    let url = settings.session_redis_url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    pool(config(url, false)?, settings.redis_pool_size).await.map(Some)
}

async fn pool(mut config: Config, size: usize) -> Result<Pool, Error> {
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
        .build_pool(size)?;
    pool.init().await?;
    Ok(pool)
}

/// The client configuration for `REDIS_URL` and `REDIS_CLUSTER`. Credentials, TLS and the
/// database index come from the first URL; the others only add nodes.
pub fn config(redis_url: &str, cluster: bool) -> Result<Config, Error> {
    let urls: Vec<String> = redis_url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            if u.contains("://") {
                u.to_string()
            } else {
                format!("redis://{u}")
            }
        })
        .collect();
    let Some(first) = urls.first() else {
        return Err(Error::new(ErrorKind::Config, "REDIS_URL is empty"));
    };
    let mut config = Config::from_url(first)?;
    if urls.len() > 1 || cluster {
        let mut nodes = Vec::new();
        for url in &urls {
            let node = Config::from_url(url)?.server;
            if node.is_unix_socket() {
                return Err(Error::new(
                    ErrorKind::Config,
                    "REDIS_URL: a Unix socket is one Redis server, not a cluster's node",
                ));
            }
            for server in node.hosts() {
                nodes.push((server.host.to_string(), server.port));
            }
        }
        config.server = ServerConfig::new_clustered(nodes);
    }
    Ok(config)
}

/// The client configuration for a primary found through Sentinel: `sentinels` is
/// `host:port,...` (port 26379 when left out), `service` the name Sentinel monitors it under.
/// Credentials and the database index still come from `redis_url`; they serve the Sentinel
/// nodes too.
pub fn through_sentinel(redis_url: &str, sentinels: &str, service: &str) -> Result<Config, Error> {
    let mut nodes = Vec::new();
    for node in sentinels.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let (host, port) = match node.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') => {
                let port = port
                    .parse()
                    .map_err(|_| Error::new(ErrorKind::Config, format!("REDIS_SENTINELS: bad port in {node:?}")))?;
                (host, port)
            }
            _ => (node, 26379),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("REDIS_SENTINELS: no host in {node:?}"),
            ));
        }
        nodes.push((host.to_string(), port));
    }
    if nodes.is_empty() {
        return Err(Error::new(ErrorKind::Config, "REDIS_SENTINELS is empty"));
    }
    let mut config = config(redis_url, false)?;
    config.server = ServerConfig::new_sentinel(nodes, service.trim());
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(config: &Config) -> Vec<String> {
        config
            .server
            .hosts()
            .iter()
            .map(|s| format!("{}:{}", s.host, s.port))
            .collect()
    }

    #[test]
    fn one_url_is_one_server_unless_told_it_is_a_cluster() {
        let single = config("redis://127.0.0.1:6379", false).unwrap();
        assert!(!single.server.is_clustered());
        let seed = config("redis://127.0.0.1:7000", true).unwrap();
        assert!(seed.server.is_clustered());
        assert_eq!(nodes(&seed), ["127.0.0.1:7000"]);
    }

    #[test]
    fn a_list_of_nodes_is_a_cluster() {
        let c = config(
            "redis://:secret@10.0.0.1:7000, 10.0.0.2:7001,redis://10.0.0.3:7002",
            false,
        )
        .unwrap();
        assert!(c.server.is_clustered());
        assert_eq!(nodes(&c), ["10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"]);
        assert_eq!(c.password.as_deref(), Some("secret"));
    }

    #[test]
    fn sentinel_nodes_name_the_service_and_keep_the_credentials() {
        let c = through_sentinel(
            "redis://:secret@ignored:6379/2",
            "10.0.0.1:26380, sentinel-b ,[::1]:26381",
            "shop",
        )
        .unwrap();
        assert!(c.server.is_sentinel());
        assert_eq!(nodes(&c), ["10.0.0.1:26380", "sentinel-b:26379", "::1:26381"]);
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert_eq!(c.database, Some(2));
        assert!(through_sentinel("redis://x", " , ", "shop").is_err());
        assert!(through_sentinel("redis://x", "10.0.0.1:port", "shop").is_err());
    }

    #[test]
    fn a_unix_socket_is_one_server_and_never_a_cluster() {
        let local = config("redis+unix:///run/redis/redis.sock", false).unwrap();
        assert!(local.server.is_unix_socket());
        assert!(!local.server.is_clustered());
        assert!(config("redis+unix:///run/redis/redis.sock", true).is_err());
        assert!(config("redis://10.0.0.1:7000,redis+unix:///run/redis/redis.sock", false).is_err());
    }

    #[test]
    fn an_empty_url_is_refused() {
        assert!(config(" , ", false).is_err());
    }
}
