PRAGMA user_version = 42;
PRAGMA application_id = 1213486160;
PRAGMA journal_mode = WAL;
CREATE TABLE customer (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  email TEXT UNIQUE,
  note TEXT,
  avatar BLOB,
  balance REAL DEFAULT 0.0,
  created_at TEXT DEFAULT '2024-01-01 00:00:00'
);
CREATE TABLE "order item" (
  "order id" INTEGER NOT NULL REFERENCES customer(id),
  line INTEGER NOT NULL CHECK (line > 0),
  price NUMERIC,
  payload BLOB,
  PRIMARY KEY ("order id", line)
) WITHOUT ROWID;
CREATE TABLE loose (anything);
CREATE TABLE audit (at INTEGER PRIMARY KEY, customer INTEGER, old_name TEXT, new_name TEXT);
CREATE INDEX customer_name ON customer (name COLLATE NOCASE);
CREATE UNIQUE INDEX "order item by price" ON "order item" (price, "order id", line);
CREATE VIEW big_spenders AS
  SELECT c.name, sum(o.price) AS total FROM customer c JOIN "order item" o ON o."order id" = c.id GROUP BY c.id HAVING total > 10;
CREATE TRIGGER customer_renamed AFTER UPDATE OF name ON customer BEGIN
  INSERT INTO audit (customer, old_name, new_name) VALUES (old.id, old.name, new.name);
END;
CREATE VIRTUAL TABLE notes USING fts5(body);
INSERT INTO customer (name, email, note, avatar, balance) VALUES
  ('Zoë Ölmann', 'zoe@example.com', 'línea 1
line 2 with ''quotes'' and "double quotes" and a tab	here', x'89504e470d0a1a0a00ff00', 12.5),
  ('日本語の名前 🐘', NULL, NULL, NULL, -0.000001),
  ('empty blob', 'e@example.com', '', x'', 1e308),
  ('big', 'big@example.com', 'a large blob follows', randomblob(200000), 9007199254740993.0);
INSERT INTO "order item" VALUES (1, 1, 9.99, x'00'), (1, 2, 10, NULL), (2, 1, 100.25, zeroblob(10)), (3, 1, NULL, x'ffff');
INSERT INTO loose VALUES (1), (1.5), ('1'), (x'31'), (NULL), (9223372036854775807), (-9223372036854775808), ('NaN-ish text');
INSERT INTO notes (body) VALUES ('an elephant never forgets'), ('der Elefant vergisst nie 🐘'), ('nothing here');
UPDATE customer SET name = 'Zoë Ölmann-Berg' WHERE id = 1;
DELETE FROM customer WHERE id = 4;
INSERT INTO customer (name) VALUES ('after delete');
