# PostgreSQL 15 with the wal2json logical decoding output plugin (tradevault's CDC source).
# The official image already carries the PGDG apt repository that ships the plugin.
FROM postgres:15
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-wal2json \
 && rm -rf /var/lib/apt/lists/*
