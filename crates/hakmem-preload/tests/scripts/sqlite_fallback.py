"""The sqlite test through python3's sqlite3 module (when the sqlite3 CLI is missing):
runs sqlite.sql statement by statement and prints every row."""
import sqlite3
import sys

db, script = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db, isolation_level=None)
sql = open(script).read()
stmt = ""
for line in sql.splitlines(keepends=True):
    stmt += line
    if sqlite3.complete_statement(stmt):
        for row in con.execute(stmt):
            print("|".join(str(c) for c in row))
        stmt = ""
con.close()
