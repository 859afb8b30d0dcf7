"""A stand-in trading bot for `tradevault run` tests: creates its database on a first run
(as freqtrade does), records the state it starts from, then trades.
Usage: bot_script.py DB MARKER TRANSACTIONS"""

import json
import sqlite3
import sys
from pathlib import Path

from trade_stream.sqlite.digest import database_digest
from tradevault.workload import TradingWorkload, create_database

KEYS = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}

db, marker, transactions = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
if not db.exists():
    create_database(db)
conn = sqlite3.connect(db)
marker.write_text(json.dumps(database_digest(conn, KEYS)))
conn.close()
workload = TradingWorkload(db, seed=99)
workload.run(transactions)
workload.close()
sys.exit(7)  # a distinctive exit status: `tradevault run` must pass it through
