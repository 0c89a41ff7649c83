/**
 * Calendar schedules: systemd / Proxmox calendar events and cron expressions, each read in
 * an IANA time zone, with systemd's rules for daylight saving time.
 */
export { parseSchedule, type Schedule, type ScheduleOptions } from './schedule.js';
