PRAGMA journal_mode=WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL, grp INT, pad BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 150000)
INSERT INTO t(name, v, grp, pad)
  SELECT substr('abcdefghijklmnopqrstuvwxyz', x % 26 + 1, x % 13 + 1) || '-' || x, x * 1.5, x % 97,
         zeroblob(x % 300)
  FROM c;
CREATE INDEX t_grp ON t(grp, v);
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(v), min(name), max(name), sum(length(pad)) FROM t;
SELECT grp, count(*), round(avg(v), 3), length(group_concat(id % 10, '')) FROM t GROUP BY grp ORDER BY grp LIMIT 12;
SELECT name FROM t WHERE grp = 42 ORDER BY v DESC LIMIT 5;
SELECT id, name FROM t ORDER BY (id * 2654435761) % 1000003 LIMIT 5;
UPDATE t SET name = name || '-updated' WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), length(group_concat(name)) FROM t;
CREATE TABLE u AS SELECT grp, group_concat(name, ',') AS names FROM t GROUP BY grp;
SELECT grp, length(names) FROM u ORDER BY length(names) DESC, grp LIMIT 5;
SELECT count(DISTINCT substr(name, 1, 4)) FROM t;
VACUUM;
PRAGMA integrity_check;
