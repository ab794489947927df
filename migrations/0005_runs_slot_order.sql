DROP INDEX `runs_slot_uq`;--> statement-breakpoint
CREATE UNIQUE INDEX `runs_slot_uq` ON `runs` (`policy`,`slot`,`cluster`);