# The tradevault agent, built from this repository (build context: the repository root).
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git sqlite3 zstd \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tradevault
COPY pyproject.toml README.md ./
COPY config_vcs ./config_vcs
COPY trade_stream ./trade_stream
COPY restore ./restore
COPY tradevault ./tradevault
RUN pip install --no-cache-dir . "psycopg[binary]>=3.1"
VOLUME ["/data"]
ENTRYPOINT ["tradevault"]
CMD ["agent", "-c", "/etc/tradevault/tradevault.toml"]
