-- What docs/national-plan.md claims about partitions and county rows, checked on the seeded
-- province of bench/progress.py (run that first). Changes nothing: one transaction, rolled back.
--
--   psql -h 127.0.0.1 -U postgres -f bench/partitions.sql registry_bench_scale
--
-- 1. issued_form by LIST (campaign): a statement with the campaign as a parameter (a generic
--    plan, as the pool's prepared statements run) scans one partition; one without it, all.
-- 2. student by RANGE (region_code), province bounds: the scope filter's range prunes.
-- 3. A unique index without the partition key is refused.
-- 4. The province's sum over county rows against the same sum over school rows.

\timing off
BEGIN;
SET LOCAL plan_cache_mode = force_generic_plan;

-- 1 ---------------------------------------------------------------------------------------
CREATE TABLE bench_form_p (LIKE issued_form INCLUDING DEFAULTS) PARTITION BY LIST (campaign);
DO $$
DECLARE c int;
BEGIN
  FOR c IN SELECT id FROM campaign LOOP
    EXECUTE format('CREATE TABLE bench_form_p_%s PARTITION OF bench_form_p FOR VALUES IN (%s)',
                   c, c);
  END LOOP;
END $$;
ALTER TABLE bench_form_p ADD PRIMARY KEY (campaign, id);
CREATE INDEX ON bench_form_p (school);
INSERT INTO bench_form_p SELECT * FROM issued_form WHERE school <= 300;
ANALYZE bench_form_p;

PREPARE with_campaign(int, int) AS
  SELECT count(*) FROM bench_form_p WHERE campaign = $1 AND school = $2;
PREPARE without_campaign(int) AS SELECT count(*) FROM bench_form_p WHERE school = $1;
\echo '== 1a. a school''s forms in one campaign (campaign = $1): expect "Subplans Removed"'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF, TIMING OFF) EXECUTE with_campaign(1, 118);
\echo '== 1b. the same without the campaign: every partition is scanned'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF, TIMING OFF) EXECUTE without_campaign(118);

-- 2 ---------------------------------------------------------------------------------------
CREATE TABLE bench_student_p (LIKE student INCLUDING DEFAULTS) PARTITION BY RANGE (region_code);
CREATE TABLE bench_student_p_11_32 PARTITION OF bench_student_p FOR VALUES FROM ('110000') TO ('330000');
CREATE TABLE bench_student_p_33 PARTITION OF bench_student_p FOR VALUES FROM ('330000') TO ('340000');
CREATE TABLE bench_student_p_34_65 PARTITION OF bench_student_p FOR VALUES FROM ('340000') TO ('660000');
CREATE INDEX ON bench_student_p (region_code);
CREATE INDEX ON bench_student_p (id);  -- (the primary key would be (region_code, id))
INSERT INTO bench_student_p SELECT * FROM student WHERE school <= 300;
ANALYZE bench_student_p;
PREPARE in_scope(text, text) AS
  SELECT count(*) FROM bench_student_p WHERE region_code >= $1 AND region_code <= $2;
PREPARE by_id(int) AS SELECT name FROM bench_student_p WHERE id = $1;
\echo '== 2a. a county''s students by the scope''s range: one partition of three'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF, TIMING OFF) EXECUTE in_scope('330106', '330106');
\echo '== 2b. one student by id alone: every partition'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF, TIMING OFF) EXECUTE by_id(1000);

-- 3 ---------------------------------------------------------------------------------------
\echo '== 3. a unique index on form_id alone (expect an error)'
SAVEPOINT refused;
\set ON_ERROR_STOP off
CREATE UNIQUE INDEX ON bench_form_p (form_id);
\set ON_ERROR_STOP on
ROLLBACK TO SAVEPOINT refused;

-- 4 ---------------------------------------------------------------------------------------
CREATE TEMP TABLE bench_progress_county ON COMMIT DROP AS
  SELECT campaign, region_code,
         sum(students) AS students, sum(forms_issued) AS forms_issued,
         sum(paper_returned) AS paper_returned, sum(photos_uploaded) AS photos_uploaded,
         sum(photos_matches) AS photos_matches, sum(photos_differs) AS photos_differs,
         sum(photos_corrections_written) AS photos_corrections_written,
         sum(photos_unsigned) AS photos_unsigned, sum(photos_undated) AS photos_undated,
         sum(photos_retake) AS photos_retake, sum(photos_not_this_form) AS photos_not_this_form,
         sum(photos_record_changed) AS photos_record_changed,
         sum(photos_form_superseded) AS photos_form_superseded,
         sum(photos_check_failed) AS photos_check_failed, sum(photos_checking) AS photos_checking,
         sum(pending_check) AS pending_check, sum(pending_enter) AS pending_enter,
         sum(pending_approve) AS pending_approve, sum(pending_review) AS pending_review,
         sum(pending_arbitrate) AS pending_arbitrate, sum(steps_overdue) AS steps_overdue,
         sum(corrections_entered) AS corrections_entered, sum(problems_open) AS problems_open
  FROM progress_school GROUP BY campaign, region_code;
CREATE INDEX ON bench_progress_county (campaign, region_code);
ANALYZE bench_progress_county;
\echo '== 4a. the province''s counts and its cities from the 2,002 school rows (as the API does)'
EXPLAIN (ANALYZE, SUMMARY ON, COSTS OFF)
  SELECT substr(region_code, 1, 4) AS city, sum(students), sum(forms_issued), sum(paper_returned),
         sum(photos_uploaded), sum(photos_matches), sum(photos_differs), sum(photos_retake),
         sum(pending_enter), sum(pending_review), sum(steps_overdue), sum(corrections_entered),
         sum(problems_open)
  FROM progress_school WHERE campaign = 1 AND region_code >= '330000' AND region_code <= '339999'
  GROUP BY 1;
\echo '== 4b. the same from county rows'
EXPLAIN (ANALYZE, SUMMARY ON, COSTS OFF)
  SELECT substr(region_code, 1, 4) AS city, sum(students), sum(forms_issued), sum(paper_returned),
         sum(photos_uploaded), sum(photos_matches), sum(photos_differs), sum(photos_retake),
         sum(pending_enter), sum(pending_review), sum(steps_overdue), sum(corrections_entered),
         sum(problems_open)
  FROM bench_progress_county
  WHERE campaign = 1 AND region_code >= '330000' AND region_code <= '339999'
  GROUP BY 1;

ROLLBACK;
