// Types of bin/build.js (plain JavaScript, so that the launcher runs without a TypeScript loader).
export declare const BUNDLE: string;
export declare function newestSource(): number;
export declare function bundleIsStale(): boolean;
export declare function build(options?: { quiet?: boolean }): Promise<void>;
export declare function startNodeArgs(): { flags: string[]; args: string[] };
export declare function bundle(entry: string, outfile: string, options?: { quiet?: boolean }): Promise<void>;
