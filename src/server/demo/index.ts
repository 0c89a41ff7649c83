/**
 * The demo of `npm start`: a small inventory of real disk images (ext4, qcow2, FAT, NTFS) on
 * two hosts, an encrypted repository and a nightly job, built once in a data directory, and
 * the service started on it. Product code: it uses no test helper.
 */
export { DEMO_JOB, DEMO_VMS, demoConfig, demoLayout, ensureDemo, type DemoLayout } from './build-demo.js';
export { DEMO_TOOLS, checkDemoTools } from './demo-images.js';
export { DEMO_DEFAULT_LISTEN, startDemo } from './start-demo.js';
