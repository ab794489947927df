DROP INDEX `runs_cluster_idx`;--> statement-breakpoint
CREATE INDEX `runs_state_id_idx` ON `runs` (`state`,`id`);--> statement-breakpoint
CREATE INDEX `runs_cluster_active_idx` ON `runs` (`cluster`,`id`) WHERE state in ('queued', 'running');--> statement-breakpoint
CREATE INDEX `runs_cluster_done_idx` ON `runs` (`cluster`,`id`) WHERE state not in ('queued', 'running');--> statement-breakpoint
CREATE INDEX `runs_retry_idx` ON `runs` (`state`) WHERE next_attempt_at is not null;