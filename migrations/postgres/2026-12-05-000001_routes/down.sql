ALTER TABLE calls DROP CONSTRAINT calls_route_bounded;
ALTER TABLE calls DROP COLUMN route;
