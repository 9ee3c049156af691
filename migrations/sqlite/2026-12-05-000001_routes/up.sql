-- The route a call was admitted on (README: Routes): which [[routes]] entry picked its agent. Rows from
-- before, and calls refused before a route was chosen, carry ''.
ALTER TABLE calls ADD COLUMN route TEXT NOT NULL DEFAULT '' CHECK (length(route) <= 64);
