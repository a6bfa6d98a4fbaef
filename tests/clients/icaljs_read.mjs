// Reads an iCalendar file with ical.js (the library of Thunderbird's calendar) and prints,
// as JSON, what a client learns from it: METHOD, and per VEVENT its UID, SEQUENCE,
// RECURRENCE-ID, organizer, attendees with PARTSTAT, start, end (as UTC instants, after
// registering the file's VTIMEZONEs, the way Thunderbird does), their zone, and the rule.
// Usage: node icaljs_read.mjs FILE.ics
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const text = readFileSync(process.argv[2], "utf8");
const root = new ICAL.Component(ICAL.parse(text));
for (const zone of root.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(zone);
}

function address(value) {
  return String(value || "").replace(/^mailto:/i, "").toLowerCase();
}

function moment(time) {
  if (!time) return null;
  return {
    utc: time.isDate ? null : time.toJSDate().toISOString().replace(".000Z", "Z"),
    date: time.isDate ? time.toString() : null,
    zone: time.isDate ? null : time.zone ? time.zone.tzid : null,
  };
}

const events = root.getAllSubcomponents("vevent").map((component) => {
  const event = new ICAL.Event(component);
  const organizer = component.getFirstProperty("organizer");
  const rrule = component.getFirstPropertyValue("rrule");
  return {
    uid: event.uid,
    sequence: event.sequence,
    recurrence_id: event.recurrenceId ? moment(event.recurrenceId) : null,
    organizer: organizer ? address(organizer.getFirstValue()) : null,
    attendees: Object.fromEntries(
      component.getAllProperties("attendee").map((p) => [
        address(p.getFirstValue()),
        p.getParameter("partstat") || "NEEDS-ACTION",
      ]),
    ),
    start: moment(event.startDate),
    end: moment(event.endDate),
    rrule: rrule ? rrule.toString() : null,
    status: component.getFirstPropertyValue("status"),
  };
});
process.stdout.write(
  JSON.stringify({ method: root.getFirstPropertyValue("method"), events }) + "\n",
);
