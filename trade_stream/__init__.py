"""Trade-log replication: database access, change capture, backup formats and storage."""
