"""Relay-style connections: edges { cursor node }, pageInfo { hasNextPage endCursor }."""

from typing import Generic, TypeVar

import strawberry

NodeT = TypeVar("NodeT")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo

    @classmethod
    def of(cls, items: "list[tuple[str, NodeT]]", has_next_page: bool) -> "Connection[NodeT]":
        """A page from (cursor, node) pairs already cut to the page size."""
        edges = [Edge(cursor=c, node=n) for c, n in items]
        return cls(edges=edges, page_info=PageInfo(has_next_page=has_next_page,
                                                    end_cursor=edges[-1].cursor if edges else None))
