/**
 * The package version, compiled in: no file is read at run time, so the same value comes
 * out of the TypeScript sources (tsx, tests) and of dist/ (the image, npm), wherever the
 * package is installed. It is package.json's `version`; test/common/version.test.ts fails
 * when the two differ (bump both, or run `npm version`, then fix this line).
 */
export const VERSION = '0.1.0'
