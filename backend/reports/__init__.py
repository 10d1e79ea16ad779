"""What the levels above a school watch and take away: campaign progress (forms issued,
returned and entered, photos, verdicts, corrections, problem records) per region, school and
class, and the exports of it, each within the caller's scope. It reads every domain below it."""
