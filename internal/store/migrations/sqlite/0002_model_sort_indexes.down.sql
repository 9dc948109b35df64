DROP INDEX models_name;
DROP INDEX models_time;
