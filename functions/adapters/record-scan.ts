/**
 * Scanning a cluster record table: one pagination loop, with a bound, for the webhook's listing of
 * known ids and the refresher's listings. DynamoDB pages at 1 MB; a page bound of 100 is far past
 * any fleet this project is sized for (over 10,000 clusters), and stops a runaway loop.
 */
import { type DynamoDBClient, ScanCommand, type ScanCommandInput } from "@aws-sdk/client-dynamodb";
import { fromItem } from "./record-items.ts";

export const SCAN_PAGE_LIMIT = 100;

/** Every item the scan returns, unmarshalled; throws past `maxPages` pages. */
export async function scanItems(
  client: DynamoDBClient,
  input: Omit<ScanCommandInput, "ExclusiveStartKey">,
  signal?: AbortSignal,
  maxPages = SCAN_PAGE_LIMIT,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: ScanCommandInput["ExclusiveStartKey"];
  for (let page = 0; page < maxPages; page++) {
    const result = await client.send(new ScanCommand({ ...input, ExclusiveStartKey: startKey }), {
      abortSignal: signal,
    });
    items.push(...(result.Items ?? []).map(fromItem));
    startKey = result.LastEvaluatedKey;
    if (startKey === undefined) return items;
  }
  throw new Error(`${input.TableName} has more than ${maxPages} pages of cluster records`);
}

/**
 * The ids of every record not marked deleted, keys only: the projection keeps the answer small
 * (DynamoDB still charges a scan by the size of the items it reads).
 */
export async function scanLiveClusterIds(
  client: DynamoDBClient,
  table: string,
  signal?: AbortSignal,
): Promise<string[]> {
  const items = await scanItems(
    client,
    {
      TableName: table,
      ProjectionExpression: "clusterId",
      FilterExpression: "attribute_not_exists(deletedAt)",
    },
    signal,
  );
  return items.map((item) => item.clusterId).filter((id): id is string => typeof id === "string");
}
