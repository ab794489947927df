CREATE TABLE `audit_events` (
	`id` text PRIMARY KEY NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`subject` text NOT NULL,
	`outcome` text NOT NULL,
	`remote_addr` text,
	`detail` text
);
--> statement-breakpoint
CREATE INDEX `audit_subject_idx` ON `audit_events` (`subject`,`id`);--> statement-breakpoint
CREATE INDEX `audit_action_idx` ON `audit_events` (`action`,`id`);--> statement-breakpoint
CREATE TABLE `backups` (
	`id` text PRIMARY KEY NOT NULL,
	`cluster` text NOT NULL,
	`policy` text,
	`run_id` text NOT NULL,
	`state` text NOT NULL,
	`created_at` integer NOT NULL,
	`target` text NOT NULL,
	`object_key` text NOT NULL,
	`plain_size` integer,
	`plain_sha256` text,
	`cipher_size` integer,
	`cipher_sha256` text,
	`etcd_revision` integer,
	`etcd_keys` integer,
	`etcd_version` text,
	`recipients` text NOT NULL,
	`facts` text,
	`hold` integer DEFAULT false NOT NULL,
	`hold_reason` text,
	`locked_until` integer,
	`error_message` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `backups_cluster_idx` ON `backups` (`cluster`,`id`);--> statement-breakpoint
CREATE INDEX `backups_series_idx` ON `backups` (`cluster`,`policy`,`state`,`created_at`);--> statement-breakpoint
CREATE INDEX `backups_state_idx` ON `backups` (`state`);--> statement-breakpoint
CREATE INDEX `backups_policy_idx` ON `backups` (`policy`,`id`);--> statement-breakpoint
CREATE TABLE `clusters` (
	`name` text PRIMARY KEY NOT NULL,
	`labels` text NOT NULL,
	`recipients` text NOT NULL,
	`pool` text,
	`kubeconfig_sealed` text NOT NULL,
	`context` text,
	`etcd` text NOT NULL,
	`facts` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `links` (
	`id` text PRIMARY KEY NOT NULL,
	`backup_id` text NOT NULL,
	`kind` text NOT NULL,
	`expires_at` integer NOT NULL,
	`revoked_at` integer,
	`uses` integer DEFAULT 0 NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `links_backup_idx` ON `links` (`backup_id`,`id`);--> statement-breakpoint
CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `policies` (
	`name` text PRIMARY KEY NOT NULL,
	`selector` text NOT NULL,
	`schedule` text NOT NULL,
	`timezone` text NOT NULL,
	`spread` text NOT NULL,
	`rpo` text NOT NULL,
	`retention` text NOT NULL,
	`recipients` text NOT NULL,
	`target` text NOT NULL,
	`paused` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `policy_members` (
	`policy` text NOT NULL,
	`cluster` text NOT NULL,
	`since` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `policy_members_pk` ON `policy_members` (`policy`,`cluster`);--> statement-breakpoint
CREATE TABLE `runs` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`cluster` text NOT NULL,
	`policy` text,
	`slot` integer,
	`not_before` integer NOT NULL,
	`state` text NOT NULL,
	`attempt` integer NOT NULL,
	`next_attempt_at` integer,
	`lease_owner` text,
	`lease_expires_at` integer,
	`cancel_requested` integer DEFAULT false NOT NULL,
	`pod` text,
	`error_code` text,
	`error_message` text,
	`bytes` integer DEFAULT 0 NOT NULL,
	`timings` text,
	`options` text,
	`result` text,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`backup_id` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `runs_slot_uq` ON `runs` (`policy`,`cluster`,`slot`);--> statement-breakpoint
CREATE INDEX `runs_state_idx` ON `runs` (`state`,`not_before`);--> statement-breakpoint
CREATE INDEX `runs_cluster_idx` ON `runs` (`cluster`,`created_at`);--> statement-breakpoint
CREATE TABLE `targets` (
	`name` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`url` text NOT NULL,
	`credentials_sealed` text,
	`object_lock` text,
	`storage_class` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`pool` text,
	`secret_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer,
	`last_used_at` integer,
	`revoked_at` integer
);
