DROP TABLE call_analyses;
