CREATE INDEX `backups_state_id_idx` ON `backups` (`state`,`id`);--> statement-breakpoint
CREATE INDEX `runs_state_id_idx` ON `runs` (`state`,`id`);