-- The round-trip fixture: everything a MariaDB dump has to carry. Awkward names (spaces,
-- backticks, unicode), every common type with its edge values, generated columns, indexes, checks,
-- foreign keys, views (one on top of another), triggers, a procedure, a function, an event, a
-- sequence, a MyISAM table, and an AUTO_INCREMENT position past the last row. Values are written in
-- a +05:30 session so TIMESTAMPs are converted on the way in and out.
SET time_zone = '+05:30';

CREATE TABLE `parent table` (
  `id` INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `näme 名前` VARCHAR(100) NOT NULL COMMENT 'ünïcode comment',
  UNIQUE KEY `uniq näme` (`näme 名前`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='parent, with spaces';

CREATE TABLE `child``s table` (
  `id` INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `parent id` INT NOT NULL,
  `amount` DECIMAL(30,10) NOT NULL DEFAULT 0,
  CONSTRAINT `fk child→parent` FOREIGN KEY (`parent id`) REFERENCES `parent table` (`id`) ON DELETE CASCADE,
  CONSTRAINT `amount is positive` CHECK (`amount` >= 0),
  KEY `by parent and amount` (`parent id`, `amount`)
) ENGINE=InnoDB;

CREATE TABLE `every type ✓` (
  `id` INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `text ü` TEXT,
  `varchar` VARCHAR(255),
  `char` CHAR(10),
  `blob` LONGBLOB,
  `varbinary` VARBINARY(32),
  `json` JSON,
  `decimal` DECIMAL(30,10),
  `datetime` DATETIME(6),
  `timestamp` TIMESTAMP(6) NULL DEFAULT NULL,
  `date` DATE,
  `time` TIME(6),
  `year` YEAR,
  `bit` BIT(10),
  `enum` ENUM('small', 'with space', 'ünï'),
  `set` SET('a', 'b c', 'ü'),
  `float` FLOAT,
  `double` DOUBLE,
  `tinyint` TINYINT,
  `bigint` BIGINT,
  `unsigned bigint` BIGINT UNSIGNED,
  `uuid` UUID,
  `inet6` INET6,
  `col``with``backticks` INT,
  `virtual` VARCHAR(300) AS (CONCAT(`varchar`, ' (virtual)')) VIRTUAL,
  `stored` BIGINT AS (CHAR_LENGTH(`text ü`) * 1000 + `tinyint`) STORED,
  KEY `by stored` (`stored`)
) ENGINE=InnoDB;

CREATE TABLE `auto increment` (
  `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `label` VARCHAR(20) NOT NULL
);

CREATE TABLE `audit log` (
  `id` INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `message` VARCHAR(255) NOT NULL,
  `at` DATETIME(6) NOT NULL
);

CREATE TABLE `myisam table` (`id` INT PRIMARY KEY, `note` VARCHAR(20)) ENGINE=MyISAM;

CREATE SEQUENCE `order number` START WITH 100 INCREMENT BY 5 CACHE 0;
SELECT NEXTVAL(`order number`), NEXTVAL(`order number`);

DELIMITER ;;
CREATE TRIGGER `before insert ✓` BEFORE INSERT ON `parent table` FOR EACH ROW
  SET NEW.`näme 名前` = TRIM(NEW.`näme 名前`);;
CREATE TRIGGER `after update` AFTER UPDATE ON `child``s table` FOR EACH ROW
  INSERT INTO `audit log` (`message`, `at`) VALUES (CONCAT('amount ', OLD.`amount`, ' -> ', NEW.`amount`), '2024-01-02 03:04:05.678901');;
CREATE PROCEDURE `add child`(IN `parent` INT, IN `value` DECIMAL(30,10))
  MODIFIES SQL DATA COMMENT 'adds a child'
BEGIN
  INSERT INTO `child``s table` (`parent id`, `amount`) VALUES (`parent`, `value`);
END;;
CREATE FUNCTION `doubled ✓`(`x` DECIMAL(30,10)) RETURNS DECIMAL(30,10) DETERMINISTIC NO SQL
  RETURN `x` * 2;;
CREATE EVENT `nightly cleanup` ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' ON COMPLETION PRESERVE DISABLE
  COMMENT 'never runs in tests'
  DO DELETE FROM `audit log` WHERE `at` < '2000-01-01';;
DELIMITER ;

CREATE VIEW `parent totals` AS
  SELECT p.`id`, p.`näme 名前` AS `name`, SUM(c.`amount`) AS `total`
  FROM `parent table` p LEFT JOIN `child``s table` c ON c.`parent id` = p.`id`
  GROUP BY p.`id`, p.`näme 名前`;
CREATE SQL SECURITY INVOKER VIEW `big ``totals``, 表` AS SELECT * FROM `parent totals` WHERE `total` > 1;

INSERT INTO `parent table` (`näme 名前`) VALUES ('  first  '), ('second 😀'), ('third');
CALL `add child`(1, 1.5);
CALL `add child`(1, 2.25);
CALL `add child`(2, 0.0000000001);
UPDATE `child``s table` SET `amount` = `amount` + 1 WHERE `id` = 2;

INSERT INTO `every type ✓` (`text ü`, `varchar`, `char`, `blob`, `varbinary`, `json`, `decimal`,
  `datetime`, `timestamp`, `date`, `time`, `year`, `bit`, `enum`, `set`, `float`, `double`,
  `tinyint`, `bigint`, `unsigned bigint`, `uuid`, `inet6`, `col``with``backticks`)
VALUES
  (CONCAT('😀🎉 naïve café 表 tab\there newline\nthere back\\slash quote'' double" nul', CHAR(0 USING utf8mb4), 'end'),
   'varchar ✓', 'char', UNHEX('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBFC0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF'), UNHEX('00FF00FF'),
   '{"emoji": "🎉", "nested": {"list": [1, 2.5, null, true, "x"]}, "quote": "\\""}',
   '12345678901234567890.0123456789', '2024-02-29 23:59:59.999999', '2024-02-29 23:59:59.123456', '1000-01-01',
   '838:59:59.999999', 2155, b'1010101011', 'ünï', 'a,ü', 3.40282e38, 1.7976931348623157e308,
   -128, -9223372036854775808, 18446744073709551615, '123e4567-e89b-12d3-a456-426614174000', '2001:db8::1', 7),
  ('', '', '', '', '', '[]', '-99999999999999999999.9999999999', '1000-01-01 00:00:00.000000',
   '1970-01-01 05:30:01.000001', '9999-12-31', '-838:59:59.999999', 1901, b'0', 'small', '', 1.17549e-38,
   2.2250738585072014e-308, 127, 9223372036854775807, 0, '00000000-0000-0000-0000-000000000000', '::', -1),
  ('0.1', 'with space', ' lead', UNHEX('00'), NULL, '{}', '0.0000000001', '2038-01-19 08:44:07.999999',
   '2038-01-19 08:44:07.999999', '2000-02-29', '00:00:00.000001', 2000, b'1111111111', 'with space', 'a,b c,ü', 0.1,
   -0.0, 0, 0, 1, NULL, '::ffff:192.0.2.1', 0),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0.30000000000000004,
   NULL, NULL, NULL, NULL, NULL, NULL);

INSERT INTO `auto increment` (`label`) VALUES ('one'), ('two'), ('three'), ('four'), ('five'), ('six'), ('seven'), ('eight'), ('nine'), ('ten');
DELETE FROM `auto increment` WHERE `id` > 7;

INSERT INTO `myisam table` VALUES (1, 'not InnoDB');
