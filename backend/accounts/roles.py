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


class RegionLevel(StrEnum):
    province = "province"
    city = "city"
    county = "county"


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

# Which scope an account of each role holds (a sysadmin may hold a region or the nation).
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
