"""Roles, their rank, and the kind of scope each one holds."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    parent = "parent"
    teacher = "teacher"
    registrar = "registrar"
    school_leader = "school_leader"
    county_reviewer = "county_reviewer"
    city_admin = "city_admin"
    province_admin = "province_admin"
    sysadmin = "sysadmin"


class ScopeKind(StrEnum):
    guardian = "guardian"  # a parent: their own children only
    school_class = "class"
    school = "school"
    region = "region"
    national = "national"
    # a sysadmin: no person's data of its own; a region's, read-only, only under an approved
    # support grant (backend/accounts/support.py), when its scope is that region's
    support = "support"


class RegionLevel(StrEnum):
    province = "province"
    city = "city"
    county = "county"


class Administration(StrEnum):
    """Which education authority administers a school (notice 001, appendix 2): the county it
    lies in, or the city or province that runs it directly (市直属 / 省直属). That authority
    reviews the school's key-data changes and problem-record actions."""

    county = "county"
    city = "city"
    province = "province"


# The role that reviews for each administering authority.
AUTHORITY_ROLE: dict[Administration, Role] = {
    Administration.county: Role.county_reviewer,
    Administration.city: Role.city_admin,
    Administration.province: Role.province_admin,
}


def administering_region(school_region_code: str, administration: Administration) -> str:
    """The region code of the authority that administers a school in county `school_region_code`."""
    if administration is Administration.province:
        return school_region_code[:2] + "0000"
    if administration is Administration.city:
        return school_region_code[:4] + "00"
    return school_region_code


RANK: dict[Role, int] = {role: rank for rank, role in enumerate(Role)}

ROLE_LABEL: dict[Role, str] = {
    Role.parent: "家长/监护人",
    Role.teacher: "班主任",
    Role.registrar: "学籍管理员",
    Role.school_leader: "学校领导",
    Role.county_reviewer: "县级学籍主管部门",
    Role.city_admin: "市级管理员",
    Role.province_admin: "省级管理员",
    Role.sysadmin: "系统管理员",
}

# Which scope an account of each role holds (a sysadmin may hold a region or the nation). A
# sysadmin's holds only what configures the system; its requests read students' data only
# under a support grant (`principal.principal_of`, backend/accounts/support.py).
SCOPE_OF_ROLE: dict[Role, tuple[ScopeKind, RegionLevel | None]] = {
    Role.parent: (ScopeKind.guardian, None),
    Role.teacher: (ScopeKind.school_class, None),
    Role.registrar: (ScopeKind.school, None),
    Role.school_leader: (ScopeKind.school, None),
    Role.county_reviewer: (ScopeKind.region, RegionLevel.county),
    Role.city_admin: (ScopeKind.region, RegionLevel.city),
    Role.province_admin: (ScopeKind.region, RegionLevel.province),
    Role.sysadmin: (ScopeKind.national, None),
}

STAFF_ROLES = frozenset(Role) - {Role.parent}
# Who may do what by role, rank and scope: `backend/accounts/permissions.py`.
