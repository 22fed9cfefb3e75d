/**
 * The cost bounds of a GraphQL operation that graphql-js and mercurius leave out (mercurius bounds
 * the depth, `queryDepth`; graphql-js the tokens, `maxTokens`): how many fields it selects, counting
 * every alias and every use of a fragment, and how many of them are top-level (each a separate store
 * read or submission). A validation rule, so it runs once per distinct query text (mercurius caches
 * validated documents) and never at execution.
 *
 * Fragments are counted once each and the counts reused (a fragment used twice counts twice, but is
 * walked once), so a document of nested fragment spreads cannot make the count itself expensive.
 */
import {
  type ASTVisitor,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql'

/** The bounds (section `kv`). */
export interface OperationLimits {
  /** Fields in one operation (`kv.graphqlMaxFields`). */
  maxFields: number
  /** Top-level fields in one operation (`kv.graphqlMaxRootFields`). */
  maxRootFields: number
}

/** The code of the errors this rule reports (in `extensions.code`). */
export const TOO_COMPLEX = 'KV_GRAPHQL_TOO_COMPLEX'

interface Count {
  /** Fields at every depth. */
  fields: number
  /** Fields at the top of the selection set. */
  top: number
}

/**
 * A validation rule reporting, per operation, more than `maxFields` fields or more than
 * `maxRootFields` top-level fields, with `extensions.code` {@link TOO_COMPLEX}.
 */
export function operationLimitsRule(limits: OperationLimits): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    const memo = new Map<string, Count>()
    const visiting = new Set<string>()
    const fragment = (name: string): Count => {
      const known = memo.get(name)
      if (known !== undefined) return known
      const def: FragmentDefinitionNode | null | undefined = context.getFragment(name)
      // Unknown and cyclic fragments are other rules' errors; they count nothing here.
      if (def == null || visiting.has(name)) return { fields: 0, top: 0 }
      visiting.add(name)
      const c = count(def.selectionSet)
      visiting.delete(name)
      memo.set(name, c)
      return c
    }
    const count = (set: SelectionSetNode): Count => {
      const c: Count = { fields: 0, top: 0 }
      for (const s of set.selections) {
        if (s.kind === Kind.FIELD) {
          c.fields += 1 + (s.selectionSet === undefined ? 0 : count(s.selectionSet).fields)
          c.top += 1
        } else {
          const inner = s.kind === Kind.FRAGMENT_SPREAD ? fragment(s.name.value) : count(s.selectionSet)
          c.fields += inner.fields
          c.top += inner.top
        }
      }
      return c
    }
    return {
      OperationDefinition(node: OperationDefinitionNode) {
        const c = count(node.selectionSet)
        const name = node.name?.value ?? 'the operation'
        if (c.top > limits.maxRootFields)
          context.reportError(
            new GraphQLError(
              `${name} has ${c.top} top-level fields, more than ${limits.maxRootFields} (kv.graphqlMaxRootFields)`,
              { nodes: [node], extensions: { code: TOO_COMPLEX } },
            ),
          )
        if (c.fields > limits.maxFields)
          context.reportError(
            new GraphQLError(
              `${name} selects ${c.fields} fields, more than ${limits.maxFields} (kv.graphqlMaxFields)`,
              { nodes: [node], extensions: { code: TOO_COMPLEX } },
            ),
          )
        return false
      },
    }
  }
}
