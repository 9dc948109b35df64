-- Model lists with base models included filter with an OR that the
-- (tenancy, compartment, time) index cannot serve; these let the database
-- walk models in the requested order and stop at the page's end instead
-- of sorting every row with its body.
CREATE INDEX models_time ON models(time_created, id);
CREATE INDEX models_name ON models(display_name, id);
