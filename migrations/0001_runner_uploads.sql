CREATE TABLE `uploads` (
	`backup_id` text PRIMARY KEY NOT NULL,
	`run_id` text NOT NULL,
	`upload_id` text NOT NULL,
	`next_part` integer NOT NULL,
	`size` integer NOT NULL,
	`hash_state` text NOT NULL,
	`parts` text NOT NULL,
	`created_at` integer NOT NULL
);
